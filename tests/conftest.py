"""Test-session settings: one torch thread, and the list of slow tests.

One thread. The tests simulate small populations: long chains of tiny tensor operations that
torch's intra-op threads cannot speed up, and whose spin-waiting on a busy 2-core machine made
them several times slower. One thread keeps the suite's wall time stable (results do not depend
on it).

Slow tests. The README's test command, ``python -m pytest -q -m "not slow"``, must pass in a few
minutes on 2 cores; ``.ci/run`` runs it, then ``python -m pytest -q -m slow`` as a second stage.
A test is slow when it takes more than about 10 s of CPU on the 2-core machine. Tests are marked
in one of two ways:

* ``@pytest.mark.slow`` on the test itself, in files where it is one or two tests
  (tests/test_fit.py's B6 fit, tests/test_docs.py's fitting commands);
* listed in ``SLOW`` below, by node id (a function's id marks all its parameter cases; one case's
  id marks that case alone), with the CPU time each took when measured. Several people edit the
  test files at once; one list here keeps those edits apart and shows the whole slow stage in one
  place. ``tests/test_docs.py::test_slow_list_names_existing_tests`` fails when an entry no longer
  names a test.

Times: CPU seconds (user + system, the test process and its subprocesses) on the project's 2-core
machine, measured with other jobs running, so wall time on a quiet machine is about the same.
"""
import pytest
import torch

torch.set_num_threads(1)

SLOW = {
    # node id: CPU seconds measured on the 2-core machine (2026-12-03, torch 2.13.0+cpu), what
    # makes it slow. "same fit as ..." where the time is that of the named measured run.
    "tests/test_adaptive.py::test_refractory_period_matches_exact[lif-adaptive_heun]":
        "170 s, adaptive_heun's many small steps",
    "tests/test_adaptive.py::test_refractory_period_matches_exact[cubalif-rk4]": "31 s, fixed-step rk4",
    "tests/test_adaptive.py::test_refractory_period_matches_exact[alif_current-rk4]": "31 s",
    "tests/test_adaptive.py::test_refractory_period_matches_exact[alif_threshold-rk4]": "30 s",
    "tests/test_adaptive.py::test_refractory_period_matches_exact[lif-rk4]": "the rk4 cases above",
    "tests/test_fit.py::test_cubalif_recovered_from_2x_away": "55 s, four-parameter fit",
    "tests/test_fit.py::test_alif_recovered_from_2x_away": "21 s and 16 s, fits",
    "tests/test_fit.py::test_20db_noise_cubalif_alif_within_2_percent":
        "the fits of the two tests above, on noisy data",
    "tests/test_fit.py::test_ca1_passive_fit_matches_single_exponential":
        "same fit as examples/fit_ca1.py (26 s)",
    "tests/test_gradients.py::test_later_spikes_finite_differences[dopri5]": "18 s, adaptive solver",
    "tests/test_gradients.py::test_gradcheck_cubalif[dopri5]": "13 s, gradcheck through dopri5",
    "tests/test_nonlinear.py::test_per_neuron_parameters_batch": "13 s, nonlinear models, dopri5",
    "tests/test_kernels.py::test_stream_memory_is_bounded": "14 s, 3e5 steps of 1000 neurons",
    "tests/test_discrete_properties.py::test_fused_equals_torch_over_option_combinations":
        "30 s and 39 s (two runs), 40 random option combinations; new kernel configurations compile",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        base = item.nodeid.split("[", 1)[0]
        if item.nodeid in SLOW or base in SLOW:
            item.add_marker(pytest.mark.slow)
