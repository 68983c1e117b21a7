// EXIF orientation of JPEG and PNG files. Parses untrusted bytes: every offset is bounds-checked, only
// IFD0 is read (no links are followed, so a looping IFD chain cannot loop), and anything malformed
// reads as "no orientation" (1). No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace limn::core {

// The orientation tag (1..8) of the first APP1 "Exif\0\0" segment before the first scan of a JPEG
// stream; 1 if the data is not a JPEG, has no such segment, or the segment is malformed.
int jpeg_exif_orientation(const uint8_t* data, size_t size);

// The orientation tag of a PNG stream's eXIf chunk (a TIFF structure, before the image data); 1 if
// the data is not a PNG, has no eXIf chunk before IDAT, or the chunk is malformed.
int png_exif_orientation(const uint8_t* data, size_t size);

// The orientation tag (0x0112, SHORT) in IFD0 of a TIFF structure ("II"/"MM" header), i.e. the
// EXIF payload after "Exif\0\0"; 1 if absent, out of range or malformed.
int tiff_orientation(const uint8_t* tiff, size_t size);

}  // namespace limn::core
