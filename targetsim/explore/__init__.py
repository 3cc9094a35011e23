"""Many runs of one scenario (issue 19): sweeps over inputs, variance-based sensitivity and scenario
discovery. Built on :mod:`targetsim.api` (one run) and :mod:`targetsim.distributed` (where runs go)."""
