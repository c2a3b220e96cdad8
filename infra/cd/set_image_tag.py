"""Read or set the image of a Helm values file, keeping its comments and layout (the release workflows).

    python3 infra/cd/set_image_tag.py VALUES_FILE TAG [DIGEST]   set image.tag (and image.digest)
    python3 infra/cd/set_image_tag.py --get-digest VALUES_FILE     print image.digest (fails if empty)

Only the `tag:` / `digest:` lines of the top-level `image:` block change; the script fails if it
finds none, so a renamed key cannot make a release silently deploy nothing. Production's release
reads the digest staging ran (--get-digest on values-staging.yaml) and sets that same digest.
"""

import re
import sys

TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _image_block(lines: list[str]) -> range:
    start = next((i for i, line in enumerate(lines) if re.match(r"^image:\s*(#.*)?$", line)), None)
    if start is None:
        raise SystemExit("no top-level image: block in the values file")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\S", lines[i])), len(lines))
    return range(start + 1, end)


def set_key(text: str, key: str, value: str) -> str:
    lines = text.splitlines(keepends=True)
    for i in _image_block(lines):
        match = re.match(rf"^(\s+{key}:\s*)(\S+)?(\s*#.*)?$", lines[i])
        if match:
            lines[i] = f'{match.group(1)}"{value}"{match.group(3) or ""}\n'
            return "".join(lines)
    if key == "digest":
        # No digest line yet: add one after the tag, with the tag's indentation.
        for i in _image_block(lines):
            match = re.match(r"^(\s+)tag:", lines[i])
            if match:
                lines.insert(i + 1, f'{match.group(1)}digest: "{value}"\n')
                return "".join(lines)
    raise SystemExit(f"no image.{key} in the values file")


def set_image_tag(text: str, tag: str, digest: str | None = None) -> str:
    text = set_key(text, "tag", tag)
    return set_key(text, "digest", digest) if digest else text


def get_digest(text: str) -> str:
    lines = text.splitlines(keepends=True)
    for i in _image_block(lines):
        match = re.match(r'^\s+digest:\s*"?([^"\s#]*)"?', lines[i])
        if match and DIGEST.fullmatch(match.group(1)):
            return match.group(1)
    raise SystemExit("no image.digest in the values file: nothing has passed staging yet")


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--get-digest":
        with open(args[1], encoding="utf-8") as f:
            print(get_digest(f.read()))
        return
    if len(args) not in (2, 3) or not TAG.fullmatch(args[1]) or (len(args) == 3 and not DIGEST.fullmatch(args[2])):
        raise SystemExit("usage: set_image_tag.py VALUES_FILE TAG [sha256:DIGEST] | --get-digest VALUES_FILE")
    path, tag = args[0], args[1]
    digest = args[2] if len(args) == 3 else None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(set_image_tag(text, tag, digest))
    print(f"{path}: image.tag = {tag}" + (f", image.digest = {digest}" if digest else ""))


if __name__ == "__main__":
    main()
