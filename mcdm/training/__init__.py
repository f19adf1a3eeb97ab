"""The training kit every trainer (``mcdm train denoiser|clip|judges|vae``) is built from.

    schedule.py     the learning rate: linear warm-up, then constant or cosine decay (to zero or a floor)
    checkpoints.py  resumable training state in checkpoint folders (safetensors + JSON + SHA256SUMS), keep-last-N,
                    resume from the newest readable one
    log.py          the CSV log of a run, trimmed on resume to the checkpoint it continues from
    guards.py       a writable run folder before any work; a non-finite loss or gradient stopping the run
    trainer.py      what a trainer registers: its config schema and its run function
    builtin.py      the engine's own trainers (denoiser, judges, vae), registered like any plugin's

Importing any of these imports no torch: trainers load on first use.
"""
