#!/usr/bin/env python3
"""The one embedding generator: turns data files (JSON Schemas) into a C
source, so the binary carries its contracts and works offline.

  embed.py NAME OUTPUT.c FILE              const char NAME[] with FILE's bytes
  embed.py --key stem NAME OUTPUT.c FILE...
      const char NAME_<stem>[] per file, and a table
      const struct gw_embedded NAME[] = {{"<stem>", NAME_<stem>}, ...}
      with const size_t NAME_count (the stem: file name without extension)
  embed.py --key id NAME OUTPUT.c FILE...
      the same table keyed by each JSON document's "$id" (without an empty
      fragment); the per-file arrays are static

Bytes are written as hex, so any file (any quoting, any length) embeds the
same way; each array ends with a NUL so it reads as a C string. The tables'
type is in lib/gw/embed.h. Used from schemas/meson.build and broker/meson.build
(docs/decisions/0025-build-seams.md).
"""
import argparse
import json
import os
import re


def c_bytes(out, name, data, static):
    out.write("%sconst char %s[] = {\n" % ("static " if static else "", name))
    for i in range(0, len(data), 16):
        out.write("    " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    out.write("    0x00};\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key", choices=["stem", "id"], help="emit a table keyed by file stem or $id")
    ap.add_argument("name")
    ap.add_argument("output")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.key is None and len(a.files) != 1:
        ap.error("without --key, exactly one FILE")

    with open(a.output, "w", encoding="utf-8") as out:
        names = ", ".join(os.path.basename(f) for f in a.files)
        out.write("/* Generated from %s by tools/embed.py; do not edit. */\n" % names)
        if a.key is None:
            with open(a.files[0], "rb") as f:
                c_bytes(out, a.name, f.read(), static=False)
            return
        out.write('#include "gw/embed.h"\n\n')
        rows = []
        for i, path in enumerate(a.files):
            with open(path, "rb") as f:
                data = f.read()
            if a.key == "stem":
                key = os.path.splitext(os.path.basename(path))[0]
                sym = "%s_%s" % (a.name, re.sub(r"[^A-Za-z0-9_]", "_", key))
            else:
                key = json.loads(data)["$id"].rstrip("#")
                sym = "%s_%d" % (a.name, i)
            c_bytes(out, sym, data, static=(a.key == "id"))
            rows.append((key, sym))
        out.write("\nconst struct gw_embedded %s[] = {\n" % a.name)
        for key, sym in rows:
            out.write("    {%s, %s},\n" % (json.dumps(key), sym))
        out.write("};\nconst size_t %s_count = %d;\n" % (a.name, len(rows)))


if __name__ == "__main__":
    main()
