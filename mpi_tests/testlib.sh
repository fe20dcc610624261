# Shared helpers of the shell tests (sourced): counted checks and the final verdict.
pass=0
fail=0
check() { # check DESCRIPTION COMMAND...: runs COMMAND, counts it, names it when it fails
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi
}
finish() { # finish NAME: prints the counts; exit status 0 only if nothing failed
    echo "$1: $pass passed, $fail failed"
    test "$fail" -eq 0
}
