/* Private: pieces of the training driver (train.c) that the inference driver (infer.c)
 * shares. */
#ifndef RPUSIM_TRAIN_IMPL_H
#define RPUSIM_TRAIN_IMPL_H

#include "rpusim/ckpt.h"
#include "rpusim/data.h"
#include "rpusim/net.h"

/* The experiment's training and test sets (local). */
rpu_status rpu_train_load_data(const rpu_experiment *e, rpu_dataset *train, rpu_dataset *test);
/* The experiment's network for the data set's input shape (collective on comm). */
rpu_status rpu_train_make_net(MPI_Comm comm, const rpu_experiment *e, const rpu_dataset *ds,
                              rpu_net **net);
/* Mean loss and accuracy on ds in eval mode (collective); optional confusion matrix. */
rpu_status rpu_train_evaluate(rpu_net *net, const rpu_dataset *ds, int batch, double *loss,
                              double *acc, int *confusion);
/* The analog layers as checkpoint layers (name, handle); returns the count (<= max). */
int rpu_train_ckpt_layers(rpu_net *net, rpu_ckpt_layer *out, int max);

#endif
