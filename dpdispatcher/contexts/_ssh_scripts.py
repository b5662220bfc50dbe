"""The shell scripts SSHContext runs remotely, and parsers of their output (pure).

Every script is a single bash program run as ``bash -c`` (so the user's login shell,
csh included, only has to start bash). Each prints :data:`MARKER` on stdout and
stderr before anything else, so whatever the user's shell start-up files print is
cut off (:func:`strip_marker`). Lists of names travel on stdin, NUL-separated, never
on the command line: no quoting issue and no length limit.
"""

from __future__ import annotations

import base64
import posixpath
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dpdispatcher._script import names
from dpdispatcher._script.quoting import sh

MARKER = b"__DPDISPATCHER_BEGIN__\n"
#: where journaled commands keep their outcome (shared by login nodes behind one name)
JOURNAL_DIR = '"${XDG_CACHE_HOME:-$HOME/.cache}/dpdispatcher/ssh-run"'
#: gzip level for transfers: level 1 already removes most redundancy of text files at
#: several times the speed of the default level 6
GZIP_LEVEL = 1
#: exit codes of the journal probe
JOURNAL_RUNNING = 3
JOURNAL_ABSENT = 4
#: files larger than this are sampled to decide whether compressing pays
SAMPLE_MIN_SIZE = 1 << 20
SAMPLE_BYTES = 128 * 1024
SAMPLE_MAX_FILES = 8


def exec_string(script: str) -> str:
    """The exec request running ``script`` with bash, behind the start marker.

    Scripts containing a newline or ``!`` are passed base64-encoded, because csh
    cannot hold a newline inside quotes and expands ``!`` even there.
    """
    marker = MARKER.decode().strip()
    body = f"printf '%s\\n' {marker}; printf '%s\\n' {marker} >&2; {script}"
    if "\n" in body or "!" in body or "\r" in body:
        encoded = base64.b64encode(body.encode("utf-8")).decode("ascii")
        return f"exec bash -c 'eval \"$(printf %s {encoded} | base64 -d)\"'"
    return f"exec bash -c {sh(body)}"


def strip_marker(data: bytes) -> bytes:
    """Drop everything up to and including the first start marker."""
    pos = data.find(MARKER)
    return data if pos < 0 else data[pos + len(MARKER) :]


def nul_list(names: Iterable[str]) -> bytes:
    """Names joined for a ``read -d ''`` loop (each NUL-terminated)."""
    return b"".join(name.encode("utf-8") + b"\0" for name in names)


def split_nul(data: bytes) -> list[str]:
    """Inverse of :func:`nul_list`."""
    return [item.decode("utf-8", errors="surrogateescape") for item in data.split(b"\0") if item]


def in_root(root: str, script: str) -> str:
    """``script`` run in the job root (failing if it cannot be entered)."""
    return f"cd {sh(root)} || exit; {script}"


# -- journaled commands: run at most once, outcome recoverable after a drop ------------
def new_token() -> str:
    """A unique name for one journaled command."""
    return uuid.uuid4().hex


def journaled(script: str, token: str, forget: Sequence[str] = (), purge: bool = False) -> str:
    """Run ``script`` detached from the connection, keeping its outcome in the journal.

    The output goes to files first and is printed afterwards, so a connection lost
    while the command runs neither kills it nor loses its result: :func:`journal_probe`
    fetches it later. ``forget`` are tokens whose results were received (deleted now);
    ``purge`` removes entries older than a day. If the journal cannot be written the
    command runs plainly.
    """
    t = sh(token)
    old = " ".join(f'"$J"/{sh(tok)}.*' for tok in forget)
    cleanup = f"rm -f -- {old}; " if old else ""
    if purge:
        cleanup += 'find "$J" -type f -mmin +1440 -delete 2>/dev/null; '
    return (
        f"J={JOURNAL_DIR}; trap '' HUP; "
        f'if mkdir -p "$J" 2>/dev/null && : > "$J"/{t}.started; then {cleanup}'
        f'bash -c {sh(script)} </dev/null >"$J"/{t}.out 2>"$J"/{t}.err; '
        f'echo $? > "$J"/{t}.rc.tmp && mv -f "$J"/{t}.rc.tmp "$J"/{t}.rc; '
        f'cat "$J"/{t}.out; cat "$J"/{t}.err >&2; exit "$(cat "$J"/{t}.rc)"; '
        f"else exec bash -c {sh(script)} </dev/null; fi"
    )


def forget_script(tokens: Sequence[str]) -> str:
    """Delete the journal entries of ``tokens`` (their outcomes were received)."""
    return f"J={JOURNAL_DIR}; rm -f -- " + " ".join(f'"$J"/{sh(t)}.*' for t in tokens)


def journal_probe(token: str) -> str:
    """Print the recorded outcome of ``token`` as a tar (exit 0), or tell its state.

    Exits :data:`JOURNAL_RUNNING` when it started and has not finished, and
    :data:`JOURNAL_ABSENT` when it never started.
    """
    t = sh(token)
    return (
        f'J={JOURNAL_DIR}; cd "$J" 2>/dev/null || exit {JOURNAL_ABSENT}; '
        f"if [ -f {t}.rc ]; then exec tar -cf - {t}.rc {t}.out {t}.err; "
        f"elif [ -f {t}.started ]; then exit {JOURNAL_RUNNING}; else exit {JOURNAL_ABSENT}; fi"
    )


# -- small batched file operations -----------------------------------------------------
def exists_script(root: str) -> str:
    """Print (NUL-separated) which names read from stdin exist in the job root."""
    return (
        f"cd {sh(root)} 2>/dev/null || exit 0; "
        "while IFS= read -r -d '' f; do "
        'if [ -e "$f" ] || [ -L "$f" ]; then printf \'%s\\0\' "$f"; fi; done'
    )


def read_files_script(root: str) -> str:
    """Write a tar of the regular files named on stdin that exist in the job root."""
    return (
        f"cd {sh(root)} 2>/dev/null || exit 0; files=(); "
        'while IFS= read -r -d \'\' f; do [ -f "$f" ] && files+=("./$f"); done; '
        "[ ${#files[@]} -eq 0 ] && exit 0; "
        "printf '%s\\0' \"${files[@]}\" | tar -cf - --null -T -"
    )


def write_files_script(root: str) -> str:
    """Unpack a tar from stdin beside the job root's files, then rename each into place.

    Files land in a unique temporary directory inside the job root and are moved with
    ``mv`` (rename(2), atomic) one directory at a time.
    """
    return (
        f"set -e; mkdir -p {sh(root)}; cd {sh(root)}; "
        "t=$(mktemp -d .dpdispatcher-write.XXXXXX); trap 'rm -rf \"$t\"' EXIT; "
        'tar -xf - -C "$t"; shopt -s dotglob nullglob; '
        "while IFS= read -r -d '' d; do mkdir -p \"$d\"; files=(); "
        'for f in "$t/$d"/*; do [ -d "$f" ] || files+=("$f"); done; '
        '[ ${#files[@]} -eq 0 ] || mv -f -- "${files[@]}" "$d/"; '
        'done < <(cd "$t" && find . -type d -print0)'
    )


def mkdir_script(path: str) -> str:
    """Create a directory and its parents."""
    return f"mkdir -p -- {sh(path)}"


def clean_script(root: str, asynchronous: bool) -> str:
    """Rename the job root aside (atomically), then remove it, optionally in the background.

    A copy left aside by a clean that was killed is removed first.
    """
    aside = posixpath.join(posixpath.dirname(root), names.removing_dir(posixpath.basename(root)))
    remove = f"rm -rf -- {sh(aside)};"
    if asynchronous:
        remove = f"setsid nohup rm -rf -- {sh(aside)} </dev/null >/dev/null 2>&1 &"
    return (
        f"rm -rf -- {sh(aside)}; if [ -e {sh(root)} ]; then "
        f"mv -- {sh(root)} {sh(aside)} || exit; {remove} fi"
    )


# -- upload --------------------------------------------------------------------------
def upload_probe(root: str, remote_root: str, create_remote_root: bool) -> str:
    """Check ``remote_root``; if the job root exists, sha256sum the names on stdin.

    Exits 3 with a message when ``remote_root`` is missing and may not be created.
    Prints ``EXISTS`` first when the job root exists.
    """
    check = (
        ""
        if create_remote_root
        else (
            f'if [ ! -d {sh(remote_root)} ]; then echo "remote_root {remote_root} does not '
            'exist on the remote host (create it, or set create_remote_root: true)" >&2; '
            "exit 3; fi; "
        )
    )
    return (
        f"{check}if cd {sh(root)} 2>/dev/null; then echo EXISTS; "
        "xargs -0 -r sha256sum -- 2>/dev/null; else cat >/dev/null; fi; exit 0"
    )


def parse_sha256sum(text: str) -> tuple[bool, dict[str, str]]:
    """``(job root exists, {name: digest})`` from :func:`upload_probe` output.

    Names with a backslash or newline are escaped by sha256sum (leading ``\\``).

    Examples
    --------
    >>> parse_sha256sum("EXISTS\\n" + "a" * 64 + "  ./x/y\\n")
    (True, {'x/y': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'})
    """
    lines = text.split("\n")
    if not lines or lines[0].strip() != "EXISTS":
        return False, {}
    out: dict[str, str] = {}
    for line in lines[1:]:
        escaped = line.startswith("\\")
        if escaped:
            line = line[1:]
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            continue
        if escaped:
            name = name.replace("\\n", "\n").replace("\\\\", "\\")
        out[name[2:] if name.startswith("./") else name] = digest
    return True, out


def extract_script(root: str, compressed: bool) -> str:
    """Create the job root and unpack the tar arriving on stdin into it."""
    flags = "-xzf" if compressed else "-xf"
    return f"set -e; mkdir -p -- {sh(root)}; cd {sh(root)}; tar {flags} -"


# -- download ------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """A sampled large file: its size and how well a sample of it compressed."""

    size: int
    sample_len: int
    compressed_len: int


def should_compress(samples: Sequence[Sample]) -> bool:
    """Whether gzip pays off, judging from samples of the large files.

    Small files are assumed to compress (they cost little either way). Large files
    that barely compress (models, random or already-compressed data) make gzip a net
    loss: it would spend seconds of CPU per 100 MB to save nothing.

    Examples
    --------
    >>> should_compress([])
    True
    >>> should_compress([Sample(100 << 20, 131072, 131100)])
    False
    """
    total = sum(s.size for s in samples)
    if total == 0:
        return True
    estimated = sum(s.size * (s.compressed_len / max(s.sample_len, 1)) for s in samples)
    return estimated < 0.85 * total


def encode_requests(requests: Sequence[tuple[str, str]]) -> bytes:
    """``(directory, pattern)`` pairs for :func:`glob_script`, on stdin."""
    return b"".join(nul_list((str(i), d, p)) for i, (d, p) in enumerate(requests))


def glob_script(root: str) -> str:
    """Expand backward patterns in the job root, and sample the large matches.

    stdin holds ``index, directory, pattern`` triples. Globs expand like Python's
    ``glob`` (no dot files for ``*``, no ``**`` recursion). Prints ``M<index>\\t<name>``
    records per match, then ``Z<size>\\t<sample>\\t<compressed>`` per sampled file,
    all NUL-terminated.
    """
    return (
        f'R={sh(root)}; cd "$R" || exit 2; shopt -s nullglob; names=(); prev=; ok=0; '
        "while IFS= read -r -d '' i && IFS= read -r -d '' d && IFS= read -r -d '' p; do "
        'if [ "$d" != "$prev" ] || [ -z "$prev" ]; then prev=$d; ok=0; '
        'cd "$R" && cd "./$d" 2>/dev/null && ok=1; fi; [ $ok = 1 ] || continue; '
        "IFS=; for f in $p; do unset IFS; "
        'if [ -e "$f" ] || [ -L "$f" ]; then printf \'M%s\\t%s\\0\' "$i" "$f"; '
        'names+=("./$d/$f"); fi; done; unset IFS; done; cd "$R"; '
        "[ ${#names[@]} -eq 0 ] && exit 0; "
        "printf '%s\\0' \"${names[@]}\" "
        "| xargs -0 -r stat -L --printf '%s\\t%F\\t%n\\0' -- 2>/dev/null "
        "| while IFS=$'\\t' read -r -d '' s t f; do "
        f'[ "$t" = \'regular file\' ] && [ "$s" -gt {SAMPLE_MIN_SIZE} ] '
        '&& printf \'%s\\t%s\\0\' "$s" "$f"; done '
        "| sort -z -t $'\\t' -k1,1nr | { n=0; while IFS=$'\\t' read -r -d '' s f; do "
        f"n=$((n+1)); [ $n -gt {SAMPLE_MAX_FILES} ] && break; "
        f'c=$(head -c {SAMPLE_BYTES} -- "$f" | gzip -{GZIP_LEVEL} -c | wc -c); '
        f'printf \'Z%s\\t%s\\t%s\\0\' "$s" {SAMPLE_BYTES} "$c"; done; }}; exit 0'
    )


def parse_glob_output(data: bytes) -> tuple[dict[int, list[str]], list[Sample]]:
    """Matches per request index, and the samples, from :func:`glob_script` output."""
    matches: dict[int, list[str]] = {}
    samples: list[Sample] = []
    for record in split_nul(data):
        kind, body = record[:1], record[1:]
        if kind == "M":
            index, _, name = body.partition("\t")
            if index.isdigit():
                matches.setdefault(int(index), []).append(name)
        elif kind == "Z":
            fields = body.split("\t")
            if len(fields) == 3 and all(f.strip().isdigit() for f in fields):
                size, sample, comp = (int(f) for f in fields)
                samples.append(Sample(size, min(sample, size), comp))
    return matches, samples


def tar_script(root: str, compress: bool) -> str:
    """Write a tar (gzip-compressed if ``compress``) of the names on stdin."""
    gzip = f" | gzip -{GZIP_LEVEL} -c" if compress else ""
    return f"set -o pipefail; cd {sh(root)} || exit; tar -cf - --null -T -{gzip}"


def home_script() -> str:
    """Print the remote home directory."""
    return "printf '%s' \"$HOME\""
