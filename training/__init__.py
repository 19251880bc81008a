"""Training the detector and the x4 generators; run from the repository root:

    python -m training.train_detector --method canny --steps 12000 --minutes 60
    python -m training.train_sr --model mobilesr --steps 60000 --minutes 90

Modules:

* :mod:`training.loop` — what every run does around its own training step: the learning-rate
  schedule (warm-up + cosine, warm restarts), resuming from ``last.pt`` or continuing from the
  shipped weights, atomic checkpoints, the CSV log, the time budget, weights + model card on a new
  best, the progress bar;
* :mod:`training.losses` — pixel (L1 / Charbonnier), FFT-amplitude, discriminator feature matching,
  relativistic-average GAN losses, and the EMA of the weights;
* :mod:`training.data` — the image split shared with ``evaluation/``, loading, the resumable sampler,
  and the super-resolution pairs and patches;
* :mod:`training.synth` — the detector's synthesised pixelated / clean crops;
* :mod:`training.train_detector`, :mod:`training.train_sr` — the entry points: arguments, the
  model-specific step and validation.

The package imports the library (:mod:`deepclarity`); the library never imports it.
"""
