"""Coverage-guided fuzzing (atheris) of the firmware's decoders and session under
CPython and of lockproto's decoders: ``python -m fuzz`` (``make fuzz``), and a short
fixed run inside the test suite (tests/test_fuzz.py). docs/security.md §Fuzzing."""
