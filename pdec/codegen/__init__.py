"""Code generation: plans -> readable PyTorch modules (Jinja templates in ``templates/``)."""
