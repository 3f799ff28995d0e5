"""The repair loop: its config (the only defaults), the loop, stop reasons, prompts, the
trajectory and results."""
