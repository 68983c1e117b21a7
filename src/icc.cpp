#include "icc.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "error.h"

namespace limn::core {
namespace {

uint32_t be32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
uint32_t le32(const uint8_t* p) {
    return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
void put_be32(std::vector<uint8_t>& v, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}
void put_le32(uint8_t* p, uint32_t x) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(x >> (8 * i));
}

// ---- JPEG: APP2 segments "ICC_PROFILE\0", sequence number, count, part (ICC.1 annex B.4) --------

constexpr uint8_t kJpegIccTag[12] = {'I', 'C', 'C', '_', 'P', 'R', 'O', 'F', 'I', 'L', 'E', 0};
constexpr size_t kJpegIccPart = 65535 - 2 - 14;  // a segment's length field counts itself

std::vector<uint8_t> jpeg_icc(const uint8_t* data, size_t size) {
    std::array<std::vector<uint8_t>, 256> parts;
    std::array<bool, 256> seen{};
    int count = 0;
    size_t pos = 2;
    while (pos + 4 <= size) {
        if (data[pos] != 0xFF) return {};
        const uint8_t marker = data[pos + 1];
        if (marker == 0xFF) {  // fill byte
            ++pos;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) break;  // the scan (or the end): no more headers
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            pos += 2;
            continue;
        }
        const size_t length = (size_t{data[pos + 2]} << 8) | data[pos + 3];
        if (length < 2 || pos + 2 + length > size) return {};
        const uint8_t* body = data + pos + 4;
        const size_t body_size = length - 2;
        if (marker == 0xE2 && body_size >= 14 && std::memcmp(body, kJpegIccTag, 12) == 0) {
            const int seq = body[12], n = body[13];
            if (n == 0 || seq == 0 || seq > n || (count != 0 && n != count) || seen[seq]) return {};
            count = n;
            seen[seq] = true;
            parts[seq].assign(body + 14, body + body_size);
        }
        pos += 2 + length;
    }
    std::vector<uint8_t> profile;
    for (int i = 1; i <= count; ++i) {
        if (!seen[i]) return {};
        profile.insert(profile.end(), parts[i].begin(), parts[i].end());
    }
    return profile;
}

std::vector<uint8_t> jpeg_with_icc(const std::vector<uint8_t>& jpeg, const std::vector<uint8_t>& profile) {
    // After SOI and the JFIF/EXIF segments that readers expect first.
    size_t at = 2;
    while (at + 4 <= jpeg.size() && jpeg[at] == 0xFF && (jpeg[at + 1] == 0xE0 || jpeg[at + 1] == 0xE1)) {
        at += 2 + ((size_t{jpeg[at + 2]} << 8) | jpeg[at + 3]);
    }
    const size_t parts = (profile.size() + kJpegIccPart - 1) / kJpegIccPart;
    std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + static_cast<ptrdiff_t>(std::min(at, jpeg.size())));
    for (size_t i = 0; i < parts; ++i) {
        const size_t begin = i * kJpegIccPart, n = std::min(kJpegIccPart, profile.size() - begin);
        const size_t length = 2 + 14 + n;
        out.insert(out.end(), {0xFF, 0xE2, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length & 0xFF)});
        out.insert(out.end(), kJpegIccTag, kJpegIccTag + 12);
        out.push_back(static_cast<uint8_t>(i + 1));
        out.push_back(static_cast<uint8_t>(parts));
        out.insert(out.end(), profile.begin() + static_cast<ptrdiff_t>(begin),
                   profile.begin() + static_cast<ptrdiff_t>(begin + n));
    }
    out.insert(out.end(), jpeg.begin() + static_cast<ptrdiff_t>(std::min(at, jpeg.size())), jpeg.end());
    return out;
}

// ---- PNG: an iCCP chunk before IDAT: keyword, NUL, method 0, zlib stream --------------------------

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

std::vector<uint8_t> png_icc(const uint8_t* data, size_t size) {
    size_t pos = 8;
    while (pos + 12 <= size) {
        const size_t length = be32(data + pos);
        const uint8_t* type = data + pos + 4;
        if (length > size - pos - 12) return {};
        if (std::memcmp(type, "IDAT", 4) == 0 || std::memcmp(type, "IEND", 4) == 0) break;
        if (std::memcmp(type, "iCCP", 4) == 0) {
            const uint8_t* body = type + 4;
            if (crc32(type, 4 + length) != be32(body + length)) return {};
            const auto* nul = static_cast<const uint8_t*>(std::memchr(body, 0, std::min<size_t>(length, 80)));
            if (!nul || nul == body || nul + 2 > body + length || nul[1] != 0) return {};
            std::vector<uint8_t> profile;
            const uint8_t* stream = nul + 2;
            if (!inflate_zlib(stream, static_cast<size_t>(body + length - stream), kMaxIccProfileBytes, profile)) return {};
            return profile;
        }
        pos += 12 + length;
    }
    return {};
}

std::vector<uint8_t> png_with_icc(const std::vector<uint8_t>& png, const std::vector<uint8_t>& profile) {
    constexpr size_t kAfterIhdr = 8 + 12 + 13;
    if (png.size() < kAfterIhdr) return png;
    std::vector<uint8_t> chunk = {'i', 'C', 'C', 'P'};
    static const char kName[] = "ICC profile";
    chunk.insert(chunk.end(), kName, kName + sizeof kName);  // with its NUL
    chunk.push_back(0);                                      // compression method: zlib
    const std::vector<uint8_t> stream = deflate_zlib(profile);
    chunk.insert(chunk.end(), stream.begin(), stream.end());
    std::vector<uint8_t> out(png.begin(), png.begin() + kAfterIhdr);
    put_be32(out, static_cast<uint32_t>(chunk.size() - 4));
    out.insert(out.end(), chunk.begin(), chunk.end());
    put_be32(out, crc32(chunk.data(), chunk.size()));
    out.insert(out.end(), png.begin() + kAfterIhdr, png.end());
    return out;
}

// ---- WebP: RIFF chunks; an ICCP chunk right after VP8X, whose flags say it is there ---------------

constexpr uint8_t kVp8xIccFlag = 0x20, kVp8xAlphaFlag = 0x10;

std::vector<uint8_t> webp_icc(const uint8_t* data, size_t size) {
    size_t pos = 12;
    while (pos + 8 <= size) {
        const size_t length = le32(data + pos + 4);
        if (length > size - pos - 8) return {};
        if (std::memcmp(data + pos, "ICCP", 4) == 0) return std::vector<uint8_t>(data + pos + 8, data + pos + 8 + length);
        pos += 8 + length + (length & 1);
    }
    return {};
}

void append_chunk(std::vector<uint8_t>& out, const char* fourcc, const uint8_t* body, size_t n) {
    out.insert(out.end(), fourcc, fourcc + 4);
    uint8_t length[4];
    put_le32(length, static_cast<uint32_t>(n));
    out.insert(out.end(), length, length + 4);
    out.insert(out.end(), body, body + n);
    if (n & 1) out.push_back(0);
}

std::vector<uint8_t> webp_with_icc(const std::vector<uint8_t>& webp, const std::vector<uint8_t>& profile,
                                   int width, int height, bool has_alpha) {
    if (webp.size() < 20) return webp;
    std::vector<uint8_t> out(webp.begin(), webp.begin() + 12);
    const bool extended = std::memcmp(webp.data() + 12, "VP8X", 4) == 0;
    size_t rest = 12;
    if (extended) {
        std::vector<uint8_t> vp8x(webp.begin() + 20, webp.begin() + 30);
        vp8x[0] |= kVp8xIccFlag;
        append_chunk(out, "VP8X", vp8x.data(), vp8x.size());
        rest = 30;
    } else {
        uint8_t vp8x[10] = {static_cast<uint8_t>(kVp8xIccFlag | (has_alpha ? kVp8xAlphaFlag : 0)), 0, 0, 0};
        for (int i = 0; i < 3; ++i) {
            vp8x[4 + i] = static_cast<uint8_t>((width - 1) >> (8 * i));
            vp8x[7 + i] = static_cast<uint8_t>((height - 1) >> (8 * i));
        }
        append_chunk(out, "VP8X", vp8x, sizeof vp8x);
    }
    append_chunk(out, "ICCP", profile.data(), profile.size());
    out.insert(out.end(), webp.begin() + static_cast<ptrdiff_t>(rest), webp.end());
    put_le32(out.data() + 4, static_cast<uint32_t>(out.size() - 8));
    return out;
}

}  // namespace

void check_icc_profile(const std::vector<uint8_t>& profile) {
    if (profile.empty()) return;
    const size_t n = profile.size();
    if (n > kMaxIccProfileBytes) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "ICC profile of " + std::to_string(n) + " bytes is over the " +
                                            std::to_string(kMaxIccProfileBytes) + " allowed");
    }
    const auto bad = [&](const std::string& why) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "the " + std::to_string(n) + " bytes given as an ICC profile are not one: " + why);
    };
    if (n < 128) bad("shorter than a profile's 128-byte header");
    const uint32_t declared = (uint32_t{profile[0]} << 24) | (uint32_t{profile[1]} << 16) |
                              (uint32_t{profile[2]} << 8) | uint32_t{profile[3]};
    if (declared != n) bad("its header gives its size as " + std::to_string(declared) + " bytes");
    if (std::memcmp(profile.data() + 36, "acsp", 4) != 0) bad("no 'acsp' signature at byte 36");
}

namespace {

// The profile in a TIFF file's first image (tag 34675, ICC Profile); BigTIFF is not read.
std::vector<uint8_t> tiff_icc(const uint8_t* data, size_t size) {
    if (size < 8) return {};
    const bool le = data[0] == 'I';
    const auto r16 = [&](uint64_t at) -> uint32_t {
        return le ? data[at] | uint32_t{data[at + 1]} << 8 : uint32_t{data[at]} << 8 | data[at + 1];
    };
    const auto r32 = [&](uint64_t at) -> uint64_t {
        return le ? r16(at) | uint64_t{r16(at + 2)} << 16 : uint64_t{r16(at)} << 16 | r16(at + 2);
    };
    const uint64_t ifd = r32(4);
    if (r16(2) != 42 || ifd > size - 2) return {};
    const uint64_t entries = r16(ifd);
    for (uint64_t i = 0; i < entries; ++i) {
        const uint64_t at = ifd + 2 + 12 * i;
        if (at + 12 > size) return {};
        if (r16(at) != 34675) continue;
        const uint32_t type = r16(at + 2);
        const uint64_t count = r32(at + 4);
        const uint64_t from = count <= 4 ? at + 8 : r32(at + 8);
        if ((type != 7 && type != 1) || count > kMaxIccProfileBytes || from > size || count > size - from) return {};
        return std::vector<uint8_t>(data + from, data + from + count);
    }
    return {};
}

std::vector<uint8_t> contained_icc(const uint8_t* data, size_t size) {
    if (!data) return {};
    if (size >= 8 && (std::memcmp(data, "II*\0", 4) == 0 || std::memcmp(data, "MM\0*", 4) == 0)) {
        return tiff_icc(data, size);
    }
    if (size >= 4 && data[0] == 0xFF && data[1] == 0xD8) return jpeg_icc(data, size);
    if (size >= 8 && std::memcmp(data, kPngSignature, 8) == 0) return png_icc(data, size);
    if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
        return webp_icc(data, size);
    }
    return {};
}

}  // namespace

std::vector<uint8_t> find_icc_profile(const uint8_t* data, size_t size) {
    std::vector<uint8_t> profile = contained_icc(data, size);
    try {
        check_icc_profile(profile);  // what a file carries that is no profile is none
    } catch (const Failure&) {
        return {};
    }
    return profile;
}

std::vector<uint8_t> embed_icc_profile(std::vector<uint8_t> encoded, limn_file_format format,
                                       const std::vector<uint8_t>& profile, bool has_alpha,
                                       int width, int height) {
    if (profile.empty()) return encoded;
    if (profile.size() > kMaxIccProfileBytes) throw std::invalid_argument("ICC profile over 16 MiB");
    switch (format) {
        case LIMN_FILE_FORMAT_PNG: return png_with_icc(encoded, profile);
        case LIMN_FILE_FORMAT_JPEG: return jpeg_with_icc(encoded, profile);
        case LIMN_FILE_FORMAT_WEBP: return webp_with_icc(encoded, profile, width, height, has_alpha);
        default: return encoded;
    }
}

}  // namespace limn::core
