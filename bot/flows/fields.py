"""Field types shared by the flow models: text, phone numbers, names, and the strict base model.

Rules:
- ``StrictModel`` forbids unknown keys (a typo is an error, never an ignored setting), refuses
  infinities and NaN, and is frozen (a live call keeps the flow it started with).
- Validators raise ``ValueError`` with a reason a support team can act on, ending in
  ``got <value>`` (``shown``), except for header values: they may be secrets and are never repeated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # also what OpenAI accepts as a function name


def shown(value: object) -> str:
    """A value for an error message: YAML spelling for true/false/null, ``repr`` otherwise."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _phone_number(value: object) -> str:
    if not isinstance(value, str) or not E164.fullmatch(value.strip()):
        raise ValueError(
            "must be an E.164 phone number: '+', country code and number, no spaces or dashes, "
            f'like "+15550100"; got {shown(value)}'
        )
    return value.strip()


def matching(pattern: re.Pattern[str], rule: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {rule}, got {shown(value)}")
        return value

    return check


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
PhoneNumber = Annotated[str, BeforeValidator(_phone_number)]
Name = Annotated[str, AfterValidator(matching(_NAME, "1 to 64 letters, digits, '-' or '_'"))]
PositiveSeconds = Annotated[float, Field(gt=0)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
