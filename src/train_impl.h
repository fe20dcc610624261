/* Private: the evaluation of the training driver (train.c), shared with infer.c (the data
 * set, network and checkpoint layers come from net_io_impl.h). */
#ifndef RPUSIM_TRAIN_IMPL_H
#define RPUSIM_TRAIN_IMPL_H

#include "rpusim/ckpt.h"
#include "rpusim/data.h"
#include "rpusim/net.h"

/* Mean loss and accuracy on ds in eval mode (collective); optional confusion matrix. */
rpu_status rpu_train_evaluate(rpu_net *net, const rpu_dataset *ds, int batch, double *loss,
                              double *acc, int *confusion);

#endif
