"""The code each container runs, as `python -m steps.<name>`; never imports `pipelines` or hera."""
