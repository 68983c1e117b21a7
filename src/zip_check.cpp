#include "zip_check.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "error.h"

namespace limn::core {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;
constexpr size_t kEndSize = 22, kLocator64Size = 20, kEnd64Size = 56, kCentralSize = 46, kLocalSize = 30;
// Deflate expands at most ~1032:1; a larger claim is a lie that would size LibTorch's buffer.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t u32(const uint8_t* p) { return u16(p) | static_cast<uint32_t>(u16(p + 2)) << 16; }
uint64_t u64(const uint8_t* p) { return u32(p) | static_cast<uint64_t>(u32(p + 4)) << 32; }

class Checker {
public:
    Checker(uint64_t size, const ZipReader& read, const std::string& origin)
        : size_(size), read_(read), origin_(origin) {}

    [[noreturn]] void bad(const std::string& what) const {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin_ +
                                         "' is not a TorchScript archive limn can read nor a compiled .pt2 "
                                         "package (a damaged ZIP archive: " + what + ")");
    }

    // `n` bytes at `offset`, all inside the file, else bad(what).
    std::vector<uint8_t> bytes(uint64_t offset, uint64_t n, const char* what) const {
        if (offset > size_ || n > size_ - offset) bad(std::string(what) + " lies past the end of the file");
        std::vector<uint8_t> buf(static_cast<size_t>(n));
        if (n > 0 && read_(offset, buf.data(), buf.size()) != buf.size()) bad(std::string("cannot read ") + what);
        return buf;
    }

    std::vector<ZipEntry> run() {
        const Directory dir = find_directory();
        const std::vector<uint8_t> cdir = bytes(dir.offset, dir.size, "the central directory");
        std::vector<ZipEntry> entries;
        std::set<std::string> names;
        size_t pos = 0;
        for (uint64_t i = 0; i < dir.count; ++i) {
            entries.push_back(central_entry(cdir, pos, "entry " + std::to_string(i), dir.offset, names));
        }
        check_no_overlap(entries);
        return entries;
    }

private:
    // Where the central directory is, and how many entries it holds.
    struct Directory {
        uint64_t count = 0, size = 0, offset = 0;
        uint64_t limit = 0;  // it ends before the records that describe it
    };

    // The end-of-central-directory record (the last in the file, as miniz finds it; it must end
    // the file), and the ZIP64 end record when there is one.
    Directory find_directory() const {
        if (size_ < kEndSize) bad("too short for an end-of-central-directory record");
        const uint64_t window = std::min<uint64_t>(size_, kEndSize + 0xFFFF);
        const std::vector<uint8_t> tail = bytes(size_ - window, window, "the end of the file");
        size_t at = tail.size() - kEndSize + 1;
        do {
            --at;
        } while (at > 0 && u32(&tail[at]) != kEndSig);
        if (u32(&tail[at]) != kEndSig) bad("no end-of-central-directory record");
        const uint8_t* end = &tail[at];
        const uint64_t end_offset = size_ - window + at;
        if (end_offset + kEndSize + u16(end + 20) != size_) bad("bytes after the end-of-central-directory record");
        if (u16(end + 4) != 0 || u16(end + 6) != 0) bad("a multi-disk archive");
        Directory d;
        d.count = u16(end + 10);
        d.size = u32(end + 12);
        d.offset = u32(end + 16);
        d.limit = end_offset;
        if (u16(end + 8) != d.count) bad("entry counts disagree");
        if (end_offset >= kLocator64Size) apply_zip64(end_offset, d);
        if (d.count == 0) bad("no entries");
        if (d.offset > d.limit || d.size > d.limit - d.offset) bad("the central directory lies outside the file");
        if (d.size / kCentralSize < d.count) {
            bad("the central directory is too small for its " + std::to_string(d.count) + " entries");
        }
        return d;
    }

    // ZIP64: a locator right before the end record points at the 64-bit end record, whose values
    // miniz takes instead; the 32-bit ones must agree (or say "see ZIP64").
    void apply_zip64(uint64_t end_offset, Directory& d) const {
        const std::vector<uint8_t> loc = bytes(end_offset - kLocator64Size, kLocator64Size, "the ZIP64 locator");
        if (u32(loc.data()) != kLocator64Sig) return;
        const uint64_t end64_offset = u64(&loc[8]);
        if (u32(&loc[4]) != 0 || u32(&loc[16]) != 1) bad("a multi-disk ZIP64 archive");
        if (end64_offset > end_offset - kLocator64Size || end_offset - kLocator64Size - end64_offset < kEnd64Size) {
            bad("the ZIP64 end record is not before its locator");
        }
        const std::vector<uint8_t> e64 = bytes(end64_offset, kEnd64Size, "the ZIP64 end record");
        if (u32(e64.data()) != kEnd64Sig) bad("no ZIP64 end record where its locator points");
        if (u64(&e64[4]) < kEnd64Size - 12) bad("a ZIP64 end record too short");
        if (u32(&e64[16]) != 0 || u32(&e64[20]) != 0 || u64(&e64[24]) != u64(&e64[32])) {
            bad("a multi-disk ZIP64 archive");
        }
        const uint64_t count64 = u64(&e64[32]), size64 = u64(&e64[40]), offset64 = u64(&e64[48]);
        if ((d.count != 0xFFFF && d.count != count64) || (d.size != 0xFFFFFFFF && d.size != size64) ||
            (d.offset != 0xFFFFFFFF && d.offset != offset64)) {
            bad("the ZIP64 end record disagrees with the end record");
        }
        d.count = count64;
        d.size = size64;
        d.offset = offset64;
        d.limit = end64_offset;
    }

    // The entry whose central header is at `pos` in the directory (`pos` moves past it), checked
    // against its local header.
    ZipEntry central_entry(const std::vector<uint8_t>& cdir, size_t& pos, const std::string& which,
                           uint64_t cdir_offset, std::set<std::string>& names) const {
        if (cdir.size() - pos < kCentralSize || u32(&cdir[pos]) != kCentralSig) {
            bad(which + " of the central directory is missing or damaged");
        }
        const uint8_t* h = &cdir[pos];
        const size_t name_len = u16(h + 28), extra_len = u16(h + 30), comment_len = u16(h + 32);
        if (cdir.size() - pos - kCentralSize < name_len + extra_len + comment_len) {
            bad(which + " runs past the central directory");
        }
        ZipEntry e;
        e.name.assign(reinterpret_cast<const char*>(h + kCentralSize), name_len);
        const std::string named = which + " ('" + e.name.substr(0, 80) + "')";
        if (e.name.empty() || e.name.find('\0') != std::string::npos) bad(which + " has an empty name or a NUL in it");
        if (!names.insert(e.name).second) bad(named + " appears twice");
        const uint16_t flags = u16(h + 8);
        if (flags & (1u | 1u << 6 | 1u << 13)) bad(named + " is encrypted");
        e.method = u16(h + 10);
        if (e.method != 0 && e.method != 8) bad(named + " uses compression method " + std::to_string(e.method));
        e.compressed_size = u32(h + 20);
        e.size = u32(h + 24);
        e.header_offset = u32(h + 42);
        uint32_t disk = u16(h + 34);
        read_zip64_extra(h + kCentralSize + name_len, extra_len, named, e, disk);
        if (disk != 0) bad(named + " is on another disk");
        if (e.method == 0 && e.size != e.compressed_size) bad(named + " is stored but its two sizes differ");
        if (e.method == 8 && e.size / kMaxDeflateRatio > e.compressed_size) {
            bad(named + " claims " + std::to_string(e.size) + " bytes from " + std::to_string(e.compressed_size));
        }
        check_local_header(e, name_len, named, cdir_offset);
        pos += kCentralSize + name_len + extra_len + comment_len;
        return e;
    }

    // The ZIP64 extra field: the values whose 32-bit field is saturated, in this order.
    void read_zip64_extra(const uint8_t* x, size_t extra_len, const std::string& named, ZipEntry& e,
                          uint32_t& disk) const {
        for (size_t k = 0; k + 4 <= extra_len;) {
            const uint16_t id = u16(x + k), len = u16(x + k + 2);
            if (k + 4 + len > extra_len) bad(named + " has a damaged extra field");
            if (id == 0x0001) {
                const uint8_t* v = x + k + 4;
                size_t left = len;
                for (uint64_t* field : {&e.size, &e.compressed_size, &e.header_offset}) {
                    if (*field != 0xFFFFFFFF) continue;
                    if (left < 8) bad(named + " has a short ZIP64 extra field");
                    *field = u64(v);
                    v += 8;
                    left -= 8;
                }
                if (disk == 0xFFFF && left >= 4) disk = u32(v);
            }
            k += 4 + len;
        }
        if (e.size == 0xFFFFFFFF || e.compressed_size == 0xFFFFFFFF || e.header_offset == 0xFFFFFFFF) {
            bad(named + " lacks its ZIP64 sizes");
        }
    }

    // Its local header: where the directory says, the same name and method; sets data_offset.
    void check_local_header(ZipEntry& e, size_t name_len, const std::string& named, uint64_t cdir_offset) const {
        if (e.header_offset > cdir_offset || cdir_offset - e.header_offset < kLocalSize) {
            bad(named + " has its local header outside the entries");
        }
        const std::vector<uint8_t> local = bytes(e.header_offset, kLocalSize, "a local header");
        if (u32(local.data()) != kLocalSig) bad(named + " has no local header at offset " + std::to_string(e.header_offset));
        if (u16(&local[8]) != e.method) bad(named + ": its local header names another compression method");
        const uint64_t local_name_len = u16(&local[26]), local_extra_len = u16(&local[28]);
        if (local_name_len != name_len || bytes(e.header_offset + kLocalSize, name_len, "a local header's name") !=
                                              std::vector<uint8_t>(e.name.begin(), e.name.end())) {
            bad(named + ": its local header names another file");
        }
        e.data_offset = e.header_offset + kLocalSize + local_name_len + local_extra_len;
        if (e.data_offset > cdir_offset || e.compressed_size > cdir_offset - e.data_offset) {
            bad(named + "'s data runs into the central directory or past the end of the file");
        }
    }

    // No two entries share bytes.
    void check_no_overlap(const std::vector<ZipEntry>& entries) const {
        std::vector<const ZipEntry*> by_offset;
        for (const ZipEntry& e : entries) by_offset.push_back(&e);
        std::sort(by_offset.begin(), by_offset.end(),
                  [](const ZipEntry* a, const ZipEntry* b) { return a->header_offset < b->header_offset; });
        for (size_t i = 1; i < by_offset.size(); ++i) {
            const ZipEntry& prev = *by_offset[i - 1];
            if (prev.data_offset + prev.compressed_size > by_offset[i]->header_offset) {
                bad("entries '" + prev.name.substr(0, 80) + "' and '" + by_offset[i]->name.substr(0, 80) + "' overlap");
            }
        }
    }

    uint64_t size_;
    const ZipReader& read_;
    const std::string& origin_;
};

[[noreturn]] void bad_records(const std::string& origin, const std::string& what) {
    fail(LIMN_ERR_INVALID_MODEL, "model '" + origin +
                                     "' is not a TorchScript archive limn can read nor a compiled .pt2 package (" +
                                     what + ")");
}

// The folder PyTorchStreamReader takes as the archive's (the first entry's, up to its first '/').
std::string archive_folder(const std::vector<ZipEntry>& entries, const std::string& origin) {
    const size_t slash = entries.empty() ? std::string::npos : entries[0].name.find('/');
    if (slash == std::string::npos || slash == 0) {
        bad_records(origin, "its first entry is not in a folder, as LibTorch's archives are");
    }
    return entries[0].name.substr(0, slash + 1);
}

bool has(const std::vector<ZipEntry>& entries, const std::string& name) {
    return std::any_of(entries.begin(), entries.end(), [&](const ZipEntry& e) { return e.name == name; });
}

}  // namespace

std::vector<ZipEntry> check_zip(uint64_t size, const ZipReader& read, const std::string& origin) {
    return Checker(size, read, origin).run();
}

std::vector<ZipEntry> check_zip_memory(const void* data, size_t size, const std::string& origin) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    const ZipReader read = [&](uint64_t offset, void* buf, size_t n) -> size_t {
        if (offset >= size) return 0;
        const size_t count = std::min<uint64_t>(n, size - offset);
        std::memcpy(buf, bytes + offset, count);
        return count;
    };
    return check_zip(size, read, origin);
}

void check_archive_records(const std::vector<ZipEntry>& entries, const std::string& origin) {
    const std::string folder = archive_folder(entries, origin);
    if (!has(entries, folder + "version") && !has(entries, folder + ".data/version")) {
        bad_records(origin, "no record " + folder + "version");
    }
}

void check_package_records(const std::vector<ZipEntry>& entries, const std::string& origin) {
    check_archive_records(entries, origin);
    const std::string folder = archive_folder(entries, origin);
    const auto bad = [&](const std::string& what) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "': the compiled package " + what);
    };
    // LibTorch's loader reads the first two names unchecked, and takes their folder as the prefix.
    if (entries.size() < 2) bad("has fewer than two entries");
    const std::string model_dir = folder + "data/aotinductor/model", const_dir = folder + "data/constants";
    size_t libraries = 0;
    for (const ZipEntry& e : entries) {
        const std::string& n = e.name;
        if (n.rfind(folder, 0) != 0) bad("has an entry outside its folder " + folder + ": '" + n.substr(0, 80) + "'");
        if (n.find('\\') != std::string::npos || ("/" + n + "/").find("/../") != std::string::npos) {
            bad("has an entry that would be extracted outside its folder: '" + n.substr(0, 80) + "'");
        }
        if (n.rfind(model_dir, 0) != 0 && n.rfind(const_dir, 0) != 0) continue;
        const std::string base = n.substr(n.find_last_of('/') + 1);
        if (base.size() > 3 && base.compare(base.size() - 3, 3, ".so") == 0) ++libraries;
    }
    if (libraries != 1) {
        bad("holds " + std::to_string(libraries) + " compiled libraries (" + model_dir +
            "/*.so), expected 1; limn does not compile packages' source code");
    }
}

void check_pickle(const uint8_t* data, size_t size, const std::string& record, const std::string& origin) {
    const auto bad = [&](const std::string& what, size_t at) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "' is not a TorchScript archive limn can read nor a "
                                     "compiled .pt2 package (record " + record + ": " + what + " at byte " +
                                     std::to_string(at) + ")");
    };
    size_t pos = 0;
    // Reads an n-byte little-endian length or index after the opcode.
    const auto arg = [&](size_t n) -> uint64_t {
        if (size - pos < n) bad("an opcode cut short", pos);
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(data[pos + i]) << (8 * i);
        pos += n;
        return v;
    };
    const auto skip = [&](uint64_t n, size_t at) {
        if (n > size - pos) bad("a length of " + std::to_string(n) + " bytes past the end", at);
        pos += static_cast<size_t>(n);
    };
    while (pos < size) {
        const size_t at = pos;
        const uint8_t op = data[pos++];
        switch (op) {
            // BINUNICODE, BINBYTES, BINSTRING, LONG4
            case 'X': case 'B': case 'T': case 0x8b: skip(arg(4), at); break;
            case 0x8c: case 'C': case 'U': case 0x8a: skip(arg(1), at); break;  // SHORT_BINUNICODE/BYTES/STRING, LONG1
            case 0x8d: case 0x8e: skip(arg(8), at); break;                      // BINUNICODE8, BINBYTES8
            case 'q': case 'h': case 'K': case 0x80: arg(1); break;             // BINPUT, BINGET, BININT1, PROTO
            case 'M': arg(2); break;                                            // BININT2
            case 'J': arg(4); break;                                            // BININT
            case 'G': case 0x95: arg(8); break;                                 // BINFLOAT, FRAME
            case 'r': case 'j':                                                 // LONG_BINPUT, LONG_BINGET
                if (arg(4) > size) bad("a memo index past any the record could hold", at);
                break;
            case 'c':  // GLOBAL: module and name, each up to a newline
                for (int line = 0; line < 2; ++line) {
                    const void* nl = std::memchr(data + pos, '\n', size - pos);
                    if (!nl) bad("a GLOBAL without its newline", at);
                    pos = static_cast<size_t>(static_cast<const uint8_t*>(nl) - data) + 1;
                }
                break;
            case '.': return;  // STOP
            case '(': case ')': case ']': case '}': case 'u': case 's': case 'e': case 'a': case 't':
            case 0x85: case 0x86: case 0x87: case 'Q': case 'R': case 'b': case 0x81: case 'N':
            case 0x88: case 0x89: case '0': case '1': case '2': case 0x94: case 0x8f: case 0x90:
            case 0x91: case 0x92: case 0x93:
                break;  // no argument
            default: return;  // not one LibTorch writes: its unpickler refuses it
        }
    }
}

}  // namespace limn::core
