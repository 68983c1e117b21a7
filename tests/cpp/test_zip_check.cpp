// The ZIP checks that run before LibTorch reads a model file (src/zip_check.cpp), on archives built
// here byte by byte: what LibTorch writes passes, each kind of damage is refused by name.
#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "error.h"
#include "zip_check.h"

namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, uint32_t v) {
    b.push_back(v & 0xFF);
    b.push_back((v >> 8) & 0xFF);
}
void put32(Bytes& b, uint32_t v) {
    put16(b, v & 0xFFFF);
    put16(b, v >> 16);
}
void put64(Bytes& b, uint64_t v) {
    put32(b, static_cast<uint32_t>(v));
    put32(b, static_cast<uint32_t>(v >> 32));
}
void set32(Bytes& b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = (v >> (8 * i)) & 0xFF;
}

struct File {
    std::string name;
    std::string data;
};

// A stored archive as PyTorch's writer makes it (ZIP64 end records included when `zip64`), with
// offsets of its parts for the tests that damage them.
struct Archive {
    Bytes bytes;
    std::vector<size_t> local;    // each local header
    std::vector<size_t> central;  // each central directory entry
    size_t cdir = 0, end64 = 0, end = 0;
};

Archive build(const std::vector<File>& files, bool zip64 = true) {
    Archive a;
    Bytes& b = a.bytes;
    for (const File& f : files) {
        a.local.push_back(b.size());
        put32(b, 0x04034b50);
        put16(b, 20);
        put16(b, 0);
        put16(b, 0);  // stored
        put32(b, 0);
        put32(b, 0);  // crc (LibTorch's miniz does not check it)
        put32(b, static_cast<uint32_t>(f.data.size()));
        put32(b, static_cast<uint32_t>(f.data.size()));
        put16(b, static_cast<uint32_t>(f.name.size()));
        put16(b, 0);
        b.insert(b.end(), f.name.begin(), f.name.end());
        b.insert(b.end(), f.data.begin(), f.data.end());
    }
    a.cdir = b.size();
    for (size_t i = 0; i < files.size(); ++i) {
        const File& f = files[i];
        a.central.push_back(b.size());
        put32(b, 0x02014b50);
        put16(b, 0x031e);
        put16(b, 20);
        put16(b, 0);
        put16(b, 0);
        put32(b, 0);
        put32(b, 0);
        put32(b, static_cast<uint32_t>(f.data.size()));
        put32(b, static_cast<uint32_t>(f.data.size()));
        put16(b, static_cast<uint32_t>(f.name.size()));
        put16(b, 0);
        put16(b, 0);
        put16(b, 0);
        put16(b, 0);
        put32(b, 0);
        put32(b, static_cast<uint32_t>(a.local[i]));
        b.insert(b.end(), f.name.begin(), f.name.end());
    }
    const uint64_t cdir_size = b.size() - a.cdir;
    if (zip64) {
        a.end64 = b.size();
        put32(b, 0x06064b50);
        put64(b, 44);
        put16(b, 0x031e);
        put16(b, 45);
        put32(b, 0);
        put32(b, 0);
        put64(b, files.size());
        put64(b, files.size());
        put64(b, cdir_size);
        put64(b, a.cdir);
        put32(b, 0x07064b50);
        put32(b, 0);
        put64(b, a.end64);
        put32(b, 1);
    }
    a.end = b.size();
    put32(b, 0x06054b50);
    put16(b, 0);
    put16(b, 0);
    put16(b, static_cast<uint32_t>(files.size()));
    put16(b, static_cast<uint32_t>(files.size()));
    put32(b, static_cast<uint32_t>(cdir_size));
    put32(b, static_cast<uint32_t>(a.cdir));
    put16(b, 0);
    return a;
}

const std::vector<File> kScript = {
    {"m/data.pkl", "PICKLE"}, {"m/constants.pkl", "\x80\x02)."}, {"m/version", "3\n"}};

// The message of the Failure that `f` throws ("" if none), after checking its status.
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const limn::core::Failure& e) {
        CHECK(e.status() == LIMN_ERR_INVALID_MODEL);
        return e.what();
    }
    return "";
}

std::string zip_error(const Bytes& b) {
    return error_of([&] { limn::core::check_zip_memory(b.data(), b.size(), "m.pt"); });
}

std::string package_error(const std::vector<File>& files) {
    const Archive a = build(files);
    return error_of([&] {
        limn::core::check_package_records(limn::core::check_zip_memory(a.bytes.data(), a.bytes.size(), "p.pt2"), "p.pt2");
    });
}

}  // namespace

TEST_CASE("zip check: an archive as LibTorch writes it passes, with its entries found") {
    for (const bool zip64 : {true, false}) {
        const Archive a = build(kScript, zip64);
        const std::vector<limn::core::ZipEntry> entries = limn::core::check_zip_memory(a.bytes.data(), a.bytes.size(), "m.pt");
        REQUIRE(entries.size() == 3);
        CHECK(entries[1].name == "m/constants.pkl");
        CHECK(entries[1].header_offset == a.local[1]);
        CHECK(entries[1].data_offset == a.local[1] + 30 + entries[1].name.size());
        CHECK(entries[1].size == 4);
        CHECK(entries[1].method == 0);
        CHECK_NOTHROW(limn::core::check_archive_records(entries, "m.pt"));
    }
}

TEST_CASE("zip check: damaged structure is refused, naming what is wrong") {
    const Archive a = build(kScript);
    const std::string prefix =
        "model 'm.pt' is not a TorchScript archive limn can read nor a compiled .pt2 package";
    CHECK(zip_error(Bytes(a.bytes.begin(), a.bytes.begin() + static_cast<long>(a.end)))
              .find("no end-of-central-directory") != std::string::npos);
    CHECK(zip_error(Bytes(4, 'P')).find("too short") != std::string::npos);
    {
        Bytes b = a.bytes;
        b.push_back(0);
        CHECK(zip_error(b).find("bytes after the end-of-central-directory") != std::string::npos);
    }
    {
        Bytes b = a.bytes;  // the directory's offset past the end, in both end records
        set32(b, a.end + 16, 0x7FFFFFF0);
        CHECK(zip_error(b).find("disagrees") != std::string::npos);
        const Archive plain = build(kScript, false);
        Bytes c = plain.bytes;
        set32(c, plain.end + 16, 0x7FFFFFF0);
        const std::string e = zip_error(c);
        CHECK(e.rfind(prefix, 0) == 0);
        CHECK(e.find("central directory lies outside the file") != std::string::npos);
    }
    {
        Bytes b = a.bytes;  // an entry's local header somewhere else
        set32(b, a.central[2] + 42, static_cast<uint32_t>(a.local[1]));
        CHECK(zip_error(b).find("names another file") != std::string::npos);
    }
    {
        Bytes b = a.bytes;  // an entry's local header past its directory
        set32(b, a.central[0] + 42, static_cast<uint32_t>(a.cdir + 8));
        CHECK(zip_error(b).find("local header outside the entries") != std::string::npos);
    }
    {
        Bytes b = a.bytes;  // an entry's data runs into the next one
        set32(b, a.central[0] + 20, 200);
        set32(b, a.central[0] + 24, 200);
        CHECK(zip_error(b).find("runs into the central directory") != std::string::npos);
        set32(b, a.central[0] + 20, 20);
        set32(b, a.central[0] + 24, 20);
        CHECK(zip_error(b).find("overlap") != std::string::npos);
    }
    {
        Bytes b = a.bytes;  // stored with two sizes; deflated claiming 2 GB from 6 bytes
        set32(b, a.central[0] + 24, 7);
        CHECK(zip_error(b).find("stored but its two sizes differ") != std::string::npos);
        b[a.central[0] + 10] = 8;
        b[a.local[0] + 8] = 8;
        set32(b, a.central[0] + 24, 0x7FFFFFFF);
        CHECK(zip_error(b).find("claims 2147483647 bytes from 6") != std::string::npos);
        b[a.central[0] + 10] = 12;
        CHECK(zip_error(b).find("compression method 12") != std::string::npos);
    }
    {
        Bytes b = a.bytes;  // a name twice
        b[a.central[1] + 46 + 2] = 'd';
        b[a.local[1] + 30 + 2] = 'd';
        CHECK(zip_error(b).find("twice") == std::string::npos);  // "m/donstants.pkl": fine
        const Archive twice = build({{"m/a", "1"}, {"m/a", "2"}});
        CHECK(zip_error(twice.bytes).find("'m/a') appears twice") != std::string::npos);
    }
    {
        Bytes b = a.bytes;  // encrypted
        b[a.central[0] + 8] = 1;
        CHECK(zip_error(b).find("encrypted") != std::string::npos);
    }
    {
        Bytes b = a.bytes;  // the directory too small for its entry count
        b[a.end + 8] = b[a.end + 10] = 200;
        set32(b, a.end64 + 24, 200);
        set32(b, a.end64 + 32, 200);
        CHECK(zip_error(b).find("too small for its 200 entries") != std::string::npos);
    }
}

TEST_CASE("zip check: the records LibTorch needs") {
    const auto records_error = [](const std::vector<File>& files) {
        const Archive a = build(files);
        return error_of([&] {
            limn::core::check_archive_records(limn::core::check_zip_memory(a.bytes.data(), a.bytes.size(), "m.pt"), "m.pt");
        });
    };
    CHECK(records_error(kScript).empty());
    CHECK(records_error({{"m/data.pkl", "x"}, {"m/.data/version", "3"}}).empty());
    CHECK(records_error({{"hello.txt", "x"}}).find("not in a folder") != std::string::npos);
    CHECK(records_error({{"m/data.pkl", "x"}, {"n/version", "3"}}).find("no record m/version") !=
          std::string::npos);
}

TEST_CASE("zip check: a compiled package holds one library, in its folder, and no way out of it") {
    const std::string so = "p/data/aotinductor/model/x.wrapper.so";
    const File json{"p/extra/limn.json", "{}"}, version{"p/.data/version", "1"};
    CHECK(package_error({json, version, {so, "ELF"}}).empty());
    // The .cpp alone made LibTorch compile it with a command from the package's JSON.
    CHECK(package_error({json,
                         version,
                         {"p/data/aotinductor/model/x.wrapper.cpp", "int x;"},
                         {"p/data/aotinductor/model/x.wrapper_compile_flags.json", "{}"}})
              .find("holds 0 compiled libraries") != std::string::npos);
    CHECK(package_error({json, version, {so, "ELF"}, {"p/data/constants/y.so", "ELF"}}).find("holds 2") !=
          std::string::npos);
    CHECK(package_error({json, version, {so, "ELF"}, {"p/data/aotinductor/model/../../../../../tmp/z", "z"}})
              .find("extracted outside its folder") != std::string::npos);
    CHECK(package_error({json, version, {so, "ELF"}, {"q/data/aotinductor/model/z", "z"}})
              .find("outside its folder p/") != std::string::npos);
    CHECK(package_error({{"p/.data/version", "1"}}).find("fewer than two entries") != std::string::npos);
}

TEST_CASE("pickle check: lengths and memo indices stay inside the record") {
    const auto pickle_error = [](const std::string& p) {
        return error_of([&] {
            limn::core::check_pickle(reinterpret_cast<const uint8_t*>(p.data()), p.size(), "m/data.pkl", "m.pt");
        });
    };
    // What torch.jit.save writes: protocol 2, globals, strings, memo, persistent ids.
    static const char kOk[] =
        "\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00(X\x07\x00\x00\x00storageq\x01"
        "K\x05M\x00\x01J\x00\x00\x01\x00G?"
        "\xf0\x00\x00\x00\x00\x00\x00\x8c\x02hi\x88\x89N\x85Qtr\x02\x00\x00\x00R.";
    const std::string ok(kOk, sizeof kOk - 1);
    CHECK(pickle_error(ok).empty());
    CHECK(pickle_error(std::string("\x80\x02X\x07\x00\x00\xf7storage.", 15))
              .find("a length of 4143972359 bytes past the end at byte 2") != std::string::npos);
    CHECK(pickle_error(std::string("\x80\x02\x8c\x09short.", 10)).find("past the end") != std::string::npos);
    CHECK(pickle_error(std::string("\x80\x02J\x01", 4)).find("cut short") != std::string::npos);
    CHECK(pickle_error(std::string("\x80\x02N\x72\xff\xff\xff\x7f.", 9)).find("memo index") != std::string::npos);
    CHECK(pickle_error("\x80\x02"
                       "cno_newline")
              .find("GLOBAL") != std::string::npos);
    CHECK(pickle_error(std::string("\x80\x02.X\xff\xff\xff\xff", 8)).empty());  // after STOP: not read
}
