"""Which names may begin the generated C names: a network's, or a symbol prefix and the network's together.

Every public C name of a model is ``<name>_...`` (``mlp_run``, ``mlp_input_t``) or ``<NAME>_...`` (the include
guard ``MLP_H``, ``MLP_INPUT_SIZE``), so keywords are harmless there; what must not happen is a name C or C++
reserves (a leading underscore, ``_STDINT_H``; a double underscore anywhere) or one longer than a compiler must
tell apart. Two models linked into one program need names (or prefixes) that differ in more than letter case,
as their macros are upper case.
"""

from __future__ import annotations

import re

LANGUAGE_KEYWORDS = frozenset({"network", "target", "weights", "input", "output"})  # the .nn language's
MAX_C_NAME = 45  # + "_OUTPUT_ZERO_POINT" (the longest suffix) is 63: the characters C99 compilers tell apart
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def identifier(name: str) -> str:
    """A C name part made from a name: other characters become underscores, a run of them one, none at the ends.

    Every C name is this after a prefix and before a suffix (``mlp_run``, ``mlp_fc_kernel``), so a keyword is
    harmless, and no double underscore (reserved in C++) or leading underscore (reserved in C) can appear.
    A network name the parser accepts is its own identifier.
    """
    text = re.sub(r"[\W_]+", "_", name).strip("_") or "m"
    return f"m_{text}" if text[0].isdigit() else text


def c_name_problem(name: str) -> str | None:
    """Why ``name`` cannot begin C names (None when it can); the text follows the name in a message."""
    upper = name.upper()
    if name.startswith("_"):
        return (f"starts with an underscore, and C reserves such names (its C names would be {name}_run and "
                f"{upper}_H, which a C library may define)")
    if "__" in name:
        return f"has a double underscore, which C++ reserves in every name (its C names would be {name}_run...)"
    if name.endswith("_"):
        return f"ends with an underscore, so its C names would have a double underscore ({name}_run), reserved in C++"
    if len(name) > MAX_C_NAME:
        return (f"is {len(name)} characters long; C names are made from at most {MAX_C_NAME} (with suffixes such "
                "as _OUTPUT_ZERO_POINT they stay within the 63 characters every C compiler tells apart)")
    return None


def prefix_problem(prefix: str, network: str) -> str | None:
    """Why ``prefix`` cannot be put before the C names of network ``network`` (None when it can)."""
    if not _PREFIX.fullmatch(prefix):
        return "a symbol prefix is letters, digits and underscores, starting with a letter (e.g. 'left_')"
    problem = c_name_problem(prefix + network)
    return None if problem is None else f"the C names would begin '{prefix + network}', which {problem}"


def network_name_from(text: str) -> str:
    """A network name made from a file or model name that every rule above accepts.

    ``small-q`` -> ``small_q``, ``2q`` -> ``m_2q``, ``_tmp__`` -> ``tmp``, ``input`` -> ``m_input``; a long one is cut.
    """
    name = re.sub(r"[\W_]+", "_", text).strip("_") or "model"
    if name[0].isdigit() or name in LANGUAGE_KEYWORDS:
        name = f"m_{name}"
    return name[:MAX_C_NAME].rstrip("_")
