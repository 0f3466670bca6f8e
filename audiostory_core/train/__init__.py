"""Training AudioStory in its three progressive stages (Guo et al., arXiv 2508.20088), on 🤗 accelerate.

- ``manifest``: the JSON Lines data format (one story per line) and its validation.
- ``build``: ``data build`` — a folder of long audio files + timestamped caption files → a manifest.
- ``cache``: audio encoded once to VAE latents (and captions to T5 targets), in safetensors shards.
- ``data``: stories → token sequences per stage, deterministic batches, collation.
- ``losses``: LM loss + reconstruction of the semantic queries onto T5 + DiT flow matching, per example.
- ``stages``: what each stage trains and how its DiT condition is made; the model to start from.
- ``config`` / ``loop`` / ``checkpoint`` / ``metrics``: the YAML config, the accelerate loop, resumable
  checkpoints in our ``save_pretrained`` format, the CSV log.
- ``cli``: ``python -m audiostory_core.train CONFIG.yaml`` and the commands ``dubkit train`` / ``dubkit data build``.

Nothing heavy is imported here: ``dubkit --help`` must not load torch through this package.
"""
