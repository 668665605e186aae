"""Write the sha256 of every shipped config, resolved to its full dict, to tests/data.

``python benchmarks/config_hashes.py`` resolves each name of :func:`lga.config.list_configs` with
:func:`lga.config.load_config`, writes the full mapping as canonical JSON (sorted keys, no spaces)
and stores its sha256 in ``tests/fixtures/resolved_config_hashes.json`` together with the mapping itself,
so that tests/config/test_config.py can prove a refactoring of ``configs/`` changed no recipe, and name the
keys that differ when one did. Re-run it only when a recipe is changed on purpose.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "resolved_config_hashes.json"


def canonical(data: dict) -> str:
    """The canonical JSON of a resolved config mapping (the text that is hashed)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def resolved(names=None) -> dict[str, dict]:
    from lga.config import list_configs, load_config
    return {n: load_config(n).to_dict() for n in (names or list_configs())}


def main() -> int:
    sys.path.insert(0, str(ROOT))
    configs = resolved()
    table = {n: {"sha256": hashlib.sha256(canonical(d).encode()).hexdigest(), "resolved": d}
             for n, d in sorted(configs.items())}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(table)} configs -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
