"""Set image.tag in a Helm values file, keeping its comments and layout (CD's release step).

    python3 infra/cd/set_image_tag.py helm/heart-core/values-production.yaml <git sha>

Only the `tag:` line of the top-level `image:` block changes; the script fails if it finds none,
so a renamed key cannot make CD silently deploy nothing.
"""

import re
import sys


def set_image_tag(text: str, tag: str) -> str:
    lines = text.splitlines(keepends=True)
    in_image = False
    for i, line in enumerate(lines):
        if re.match(r"^image:\s*(#.*)?$", line):
            in_image = True
            continue
        if in_image and re.match(r"^\S", line):
            break  # the next top-level key: the image block had no tag
        match = re.match(r"^(\s+tag:\s*)(\S+)?(\s*#.*)?$", line) if in_image else None
        if match:
            lines[i] = f'{match.group(1)}"{tag}"{match.group(3) or ""}\n'
            return "".join(lines)
    raise SystemExit("no image.tag in the values file")


def main() -> None:
    if len(sys.argv) != 3 or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", sys.argv[2]):
        raise SystemExit("usage: set_image_tag.py VALUES_FILE TAG (a valid image tag)")
    path, tag = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(set_image_tag(text, tag))
    print(f"{path}: image.tag = {tag}")


if __name__ == "__main__":
    main()
