"""`python -m steps.publish_model --model-uri=... --repository-uri=... --model-name=...`"""

from __future__ import annotations

import sys

from pydantic import ValidationError
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict

from steps.publish_model.main import PublishError, main
from steps.publish_model.params import PublishModelParams


# TODO(merge): replace with steps.common.cli once it lands; it owns argv parsing and exit codes.
class _Cli(BaseSettings, PublishModelParams):
    model_config = SettingsConfigDict(cli_kebab_case=True, cli_implicit_flags=False, cli_exit_on_error=True)


def _run() -> int:
    try:
        params = PublishModelParams.model_validate(CliApp.run(_Cli).model_dump())
        print(main(params))
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = "--" + "-".join(str(p).replace("_", "-") for p in first["loc"])
        print(f"publish_model: {flag}: {first['msg']}", file=sys.stderr)
        return 2
    except (PublishError, OSError) as exc:
        print(f"publish_model: {exc}", file=sys.stderr)
        return 2
    return 0


sys.exit(_run())
