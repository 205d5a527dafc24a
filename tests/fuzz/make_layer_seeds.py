#!/usr/bin/env python3
"""Writes the seed corpus of the layer_apply fuzz target (tests/fuzz/layer_apply/):
small layers with the entries hostile or unusual layers have. Run it from anywhere;
it needs gzip and zstd. The seeds are committed; this script documents them."""
import gzip
import io
import os
import subprocess
import tarfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layer_apply")


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0, gid=0,
          pax=None, devmajor=0, devminor=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 1700000000
    info.linkname = link
    info.devmajor, info.devminor = devmajor, devminor
    if pax:
        info.pax_headers = pax
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, io.BytesIO(data)
    return info, None


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            t.addfile(*entry(**e) if isinstance(e, dict) else e)
    # Python pads to 10 KiB records; keep only the two zero blocks that end a tar.
    raw = buf.getvalue().rstrip(b"\0")
    raw += b"\0" * (-len(raw) % 512)
    return raw + b"\0" * 1024


D, F, S, H = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
SEEDS = {
    "plain": [dict(name="etc/", kind=D, mode=0o755), dict(name="etc/hostname", data=b"pod\n"),
              dict(name="bin/", kind=D), dict(name="bin/sh", data=b"#!", mode=0o4755, uid=7, gid=8)],
    "whiteouts": [dict(name="etc/", kind=D), dict(name="etc/.wh.passwd"),
                  dict(name=".wh.tmp"), dict(name="var/.wh..wh.aufs-meta")],
    "opaque": [dict(name="data/", kind=D), dict(name="data/.wh..wh..opq"),
               dict(name="data/new", data=b"x")],
    "symlink-abs-escape": [dict(name="evil", kind=S, link="/"),
                           dict(name="evil/etc/escaped", data=b"escape\n")],
    "symlink-rel-escape": [dict(name="up", kind=S, link="../../../../.."),
                           dict(name="up/escaped", data=b"escape\n"),
                           dict(name="a/b", kind=S, link="../../.."),
                           dict(name="a/b/c/escaped", data=b"x")],
    "dotdot-name": [dict(name="../outside", data=b"x"), dict(name="a/../../outside2", data=b"y")],
    "hardlink-escape": [dict(name="link", kind=H, link="../canary"),
                        dict(name="link2", kind=H, link="/etc/passwd")],
    "hardlink-ok": [dict(name="file", data=b"shared"), dict(name="dir/", kind=D),
                    dict(name="dir/again", kind=H, link="file")],
    "symlink-then-file": [dict(name="target", kind=S, link="/etc/shadow"),
                          dict(name="target", data=b"replaced, not followed")],
    "dir-replaced": [dict(name="d/", kind=D), dict(name="d/f", data=b"1"), dict(name="d", data=b"file now")],
    "devices-fifo": [dict(name="dev/", kind=D), dict(name="dev/null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3),
                     dict(name="dev/loop", kind=tarfile.BLKTYPE, devmajor=7, devminor=0),
                     dict(name="run/fifo", kind=tarfile.FIFOTYPE)],
    "xattrs": [dict(name="file", data=b"x", pax={"SCHILY.xattr.user.note": "hello",
                                                 "SCHILY.xattr.trusted.overlay.redirect": "/x",
                                                 "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"})],
    "root-entry": [dict(name="./", kind=D, mode=0o700), dict(name="./a", data=b"a")],
    "long-names": [dict(name="d/" + "n" * 200 + "/" + "m" * 120, data=b"long"),
                   dict(name="l", kind=S, link="t" * 300)],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, entries in SEEDS.items():
        raw = tar_bytes(entries)
        with open(os.path.join(OUT, name + ".tar"), "wb") as f:
            f.write(raw)
    # GNU format (long names as ././@LongLink), and the compressions.
    gnu = tar_bytes(SEEDS["long-names"], fmt=tarfile.GNU_FORMAT)
    with open(os.path.join(OUT, "gnu-long-names.tar"), "wb") as f:
        f.write(gnu)
    plain = tar_bytes(SEEDS["plain"])
    with open(os.path.join(OUT, "plain.tar.gz"), "wb") as f:
        f.write(gzip.compress(plain, mtime=0))
    # Two gzip members, as pigz and some registries write them.
    with open(os.path.join(OUT, "multi-member.tar.gz"), "wb") as f:
        f.write(gzip.compress(plain[:1024], mtime=0) + gzip.compress(plain[1024:], mtime=0))
    zst = subprocess.run(["zstd", "-q", "-c", "-19"], input=tar_bytes(SEEDS["whiteouts"]),
                         check=True, capture_output=True).stdout
    with open(os.path.join(OUT, "whiteouts.tar.zst"), "wb") as f:
        f.write(zst)
    # Truncated streams: a tar cut inside an entry, gzip cut inside its data.
    with open(os.path.join(OUT, "truncated.tar"), "wb") as f:
        f.write(plain[:700])
    with open(os.path.join(OUT, "truncated.tar.gz"), "wb") as f:
        f.write(gzip.compress(plain, mtime=0)[:60])


if __name__ == "__main__":
    main()
