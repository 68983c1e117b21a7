#include "exif.h"

#include <cstring>

namespace limn::core {
namespace {

constexpr int kUpright = 1;

// Reads 16/32-bit values in the TIFF's byte order; the caller has checked the bounds.
struct ByteOrder {
    bool big_endian;
    uint32_t u16(const uint8_t* p) const {
        return big_endian ? (uint32_t{p[0]} << 8) | p[1] : (uint32_t{p[1]} << 8) | p[0];
    }
    uint32_t u32(const uint8_t* p) const {
        return big_endian ? (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]
                          : (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
    }
};

}  // namespace

int tiff_orientation(const uint8_t* tiff, size_t size) {
    constexpr uint32_t kOrientationTag = 0x0112;
    constexpr uint32_t kTypeShort = 3;
    constexpr size_t kEntryBytes = 12;
    if (!tiff || size < 8) return kUpright;
    ByteOrder order{};
    if (tiff[0] == 'I' && tiff[1] == 'I') {
        order.big_endian = false;
    } else if (tiff[0] == 'M' && tiff[1] == 'M') {
        order.big_endian = true;
    } else {
        return kUpright;
    }
    if (order.u16(tiff + 2) != 42) return kUpright;
    const uint32_t ifd0 = order.u32(tiff + 4);
    // Written as subtractions so that no sum can wrap around.
    if (ifd0 < 8 || ifd0 > size || size - ifd0 < 2) return kUpright;
    const size_t count = order.u16(tiff + ifd0);
    const size_t fits = (size - ifd0 - 2) / kEntryBytes;
    for (size_t i = 0; i < count && i < fits; ++i) {
        const uint8_t* entry = tiff + ifd0 + 2 + i * kEntryBytes;
        if (order.u16(entry) != kOrientationTag) continue;
        // A SHORT with count 1 is stored in the first two bytes of the value field.
        if (order.u16(entry + 2) != kTypeShort || order.u32(entry + 4) < 1) return kUpright;
        const uint32_t value = order.u16(entry + 8);
        return value >= 1 && value <= 8 ? static_cast<int>(value) : kUpright;
    }
    return kUpright;
}

int jpeg_exif_orientation(const uint8_t* data, size_t size) {
    if (!data || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return kUpright;
    size_t pos = 2;
    while (pos + 2 <= size) {
        if (data[pos] != 0xFF) return kUpright;  // not at a marker: malformed
        const uint8_t marker = data[pos + 1];
        if (marker == 0xFF) {  // fill byte before a marker
            ++pos;
            continue;
        }
        if (marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) {
            pos += 2;  // markers without a length
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) return kUpright;  // first scan or end: no EXIF
        if (size - pos < 4) return kUpright;
        const size_t length = (size_t{data[pos + 2]} << 8) | data[pos + 3];  // includes itself
        if (length < 2 || length > size - pos - 2) return kUpright;
        const uint8_t* segment = data + pos + 4;
        const size_t segment_size = length - 2;
        static const uint8_t kExifId[6] = {'E', 'x', 'i', 'f', 0, 0};
        if (marker == 0xE1 && segment_size >= sizeof kExifId &&
            std::memcmp(segment, kExifId, sizeof kExifId) == 0) {
            return tiff_orientation(segment + sizeof kExifId, segment_size - sizeof kExifId);
        }
        pos += 2 + length;
    }
    return kUpright;
}

int png_exif_orientation(const uint8_t* data, size_t size) {
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (!data || size < 8 || std::memcmp(data, signature, 8) != 0) return kUpright;
    size_t pos = 8;
    // Chunks: length (4, big-endian), type (4), data, CRC (4).
    while (pos + 8 <= size) {
        const uint32_t length = (uint32_t{data[pos]} << 24) | (uint32_t{data[pos + 1]} << 16) |
                                (uint32_t{data[pos + 2]} << 8) | data[pos + 3];
        const uint8_t* type = data + pos + 4;
        if (length > size - pos - 8) return kUpright;  // runs past the end: malformed
        if (std::memcmp(type, "eXIf", 4) == 0) return tiff_orientation(data + pos + 8, length);
        if (std::memcmp(type, "IDAT", 4) == 0 || std::memcmp(type, "IEND", 4) == 0) return kUpright;
        if (size - pos - 8 - length < 4) return kUpright;
        pos += 8 + size_t{length} + 4;
    }
    return kUpright;
}

}  // namespace limn::core
