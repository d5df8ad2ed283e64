"""libvirt's own test-suite domain XMLs (libvirt 9.0.0, LGPL) as an audit corpus.

find_domains() locates them: ../shared/corpus next to the checkout when it exists (a shortcut),
else libvirt's Debian source package, fetched once with `apt-get source --download-only`
through a private apt configuration with a deb-src entry (about 9 MB, cached in .cache/corpus).

build_node() turns them into one test-driver node file (test:///path/node.xml), giving each
domain a unique name and UUID. The test driver rejects the whole file when one domain is bad,
so every XML is first loaded alone, and rejects are recorded with libvirt's reason.
"""

import glob
import os
import re
import subprocess
import tarfile
import uuid as uuidlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.path.join(ROOT, ".cache", "corpus")
SHARED = os.path.join(ROOT, "..", "shared", "corpus", "libvirt-9.0.0", "domains")
DEBIAN_MIRROR = os.environ.get("VMGUARD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SOURCE_DIRS = ("tests/qemuxml2argvdata", "tests/qemuxml2xmloutdata", "tests/genericxml2xmlindata",
               "tests/domainschemadata")


def _fetch_debian_source():
    dest = os.path.join(CACHE, "domains")
    if os.path.isdir(dest) and os.listdir(dest):
        return dest
    apt = os.path.join(CACHE, "apt")
    for d in ("lists/partial", "cache/archives/partial", "etc"):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, "etc", "sources.list"), "w") as f:
        f.write("deb-src %s bookworm main\n" % DEBIAN_MIRROR)
    opts = ["-o", "Dir::Etc::SourceList=%s/etc/sources.list" % apt, "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::State::Lists=%s/lists" % apt, "-o", "Dir::Cache=%s/cache" % apt, "-o", "Debug::NoLocking=1"]
    subprocess.run(["apt-get", "-q"] + opts + ["update"], check=True, stdout=subprocess.DEVNULL)
    work = os.path.join(CACHE, "src")
    os.makedirs(work, exist_ok=True)
    subprocess.run(["apt-get", "-q"] + opts + ["source", "--download-only", "libvirt"], check=True, cwd=work,
                   stdout=subprocess.DEVNULL)
    orig = [p for p in glob.glob(os.path.join(work, "libvirt_*.orig.tar.*")) if not p.endswith(".asc")]
    if not orig:
        raise RuntimeError("apt-get source did not download libvirt's orig tarball")
    os.makedirs(dest + ".partial", exist_ok=True)
    with tarfile.open(orig[0]) as tar:
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            if len(parts) == 2 and parts[1].startswith(SOURCE_DIRS) and m.name.endswith(".xml") and m.isfile():
                data = tar.extractfile(m).read()
                if b"<domain" in data[:400]:
                    out = os.path.join(dest + ".partial", parts[1].replace("/", "__"))
                    with open(out, "wb") as f:
                        f.write(data)
    os.rename(dest + ".partial", dest)
    return dest


def find_domains():
    """Sorted paths of the corpus domain XMLs (VMGUARD_CORPUS_SOURCE=debian skips the shortcut)."""
    use_shared = os.path.isdir(SHARED) and os.environ.get("VMGUARD_CORPUS_SOURCE") != "debian"
    src = SHARED if use_shared else _fetch_debian_source()
    return sorted(glob.glob(os.path.join(src, "*.xml")))


def _normalize(text, index):
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    name = "corpus-%04d" % index
    text = re.sub(r"<name>[^<]*</name>", "<name>%s</name>" % name, text, count=1)
    new = str(uuidlib.UUID(int=index + 1))
    old = re.search(r"<uuid>\s*([^<\s]+)\s*</uuid>", text)
    if old:
        text = text.replace(old.group(1), new)  # <sysinfo> may repeat it and must match
    else:
        text = re.sub(r"(<name>%s</name>)" % name, r"\1<uuid>%s</uuid>" % new, text, count=1)
    return name, text


def build_node(paths, out_dir):
    """Write out_dir/node.xml with every domain the test driver accepts.

    Returns (node path, {name: source file}, {source file: reason rejected}).
    """
    import libvirt  # pylint: disable=import-outside-toplevel
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    os.makedirs(out_dir, exist_ok=True)
    probe = os.path.join(out_dir, "probe.xml")
    accepted, rejected, parts = {}, {}, []
    for i, path in enumerate(paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read()
        if "<domain" not in raw:
            rejected[path] = "not a domain document"
            continue
        name, text = _normalize(raw, i)
        with open(probe, "w") as f:
            f.write("<node>%s</node>" % text)
        try:
            libvirt.open("test://" + probe).close()
        except libvirt.libvirtError as e:
            rejected[path] = e.get_error_message()
            continue
        accepted[name] = path
        parts.append(text)
    node = os.path.join(out_dir, "node.xml")
    with open(node, "w") as f:
        f.write("<node>\n%s\n</node>\n" % "\n".join(parts))
    os.unlink(probe)
    return node, accepted, rejected


def with_identity(text, name, new_uuid):
    """``text`` (a corpus domain XML) named ``name`` with UUID ``new_uuid`` (every occurrence of its old UUID,
    as <sysinfo> may repeat it, is replaced; a domain without one gets it after its name). No XML
    declaration, so lxml and libvirt both take the string."""
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<name>[^<]*</name>", "<name>%s</name>" % name, text, count=1)
    old = re.search(r"<uuid>\s*([^<\s]+)\s*</uuid>", text)
    if old:
        return text.replace(old.group(1), new_uuid)
    return re.sub(r"(<name>%s</name>)" % re.escape(name), r"\1<uuid>%s</uuid>" % new_uuid, text, count=1)
