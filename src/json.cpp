#include "json.h"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace limn::core {

const JsonValue* JsonValue::find(std::string_view key) const {
    if (type != Type::Object) return nullptr;
    for (const auto& member : object) {
        if (member.first == key) return &member.second;
    }
    return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;

class Reader {
public:
    explicit Reader(std::string_view text) : s_(text) {}

    JsonValue document() {
        JsonValue v = value(0);
        skip_space();
        if (pos_ != s_.size()) error("unexpected data after the document");
        return v;
    }

private:
    [[noreturn]] void error(const std::string& what) const {
        throw std::invalid_argument("invalid JSON at byte " + std::to_string(pos_) + ": " + what);
    }

    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            ++pos_;
        }
    }

    bool take(char c) {
        skip_space();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }

    void expect(char c) {
        if (!take(c)) error(std::string("expected '") + c + "'");
    }

    void literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) error("unknown literal");
        pos_ += word.size();
    }

    JsonValue value(int depth) {
        if (depth > kMaxDepth) error("nested too deeply");
        skip_space();
        if (pos_ >= s_.size()) error("unexpected end");
        JsonValue v;
        const char c = s_[pos_];
        if (c == '{') {
            ++pos_;
            v.type = JsonValue::Type::Object;
            if (take('}')) return v;
            do {
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != '"') error("expected a member name");
                std::string key = string();
                expect(':');
                v.object.emplace_back(std::move(key), value(depth + 1));
            } while (take(','));
            expect('}');
        } else if (c == '[') {
            ++pos_;
            v.type = JsonValue::Type::Array;
            if (take(']')) return v;
            do {
                v.array.push_back(value(depth + 1));
            } while (take(','));
            expect(']');
        } else if (c == '"') {
            v.type = JsonValue::Type::String;
            v.string = string();
        } else if (c == 't') {
            literal("true");
            v.type = JsonValue::Type::Bool;
            v.boolean = true;
        } else if (c == 'f') {
            literal("false");
            v.type = JsonValue::Type::Bool;
        } else if (c == 'n') {
            literal("null");
        } else {
            number(v);
        }
        return v;
    }

    void number(JsonValue& v) {
        const size_t start = pos_;
        bool integral = true;
        if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
        if (pos_ >= s_.size() || !digit(s_[pos_])) error("expected a value");
        if (s_[pos_] == '0') {
            ++pos_;
        } else {
            while (pos_ < s_.size() && digit(s_[pos_])) ++pos_;
        }
        if (pos_ < s_.size() && s_[pos_] == '.') {
            integral = false;
            ++pos_;
            if (pos_ >= s_.size() || !digit(s_[pos_])) error("expected digits after '.'");
            while (pos_ < s_.size() && digit(s_[pos_])) ++pos_;
        }
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            integral = false;
            ++pos_;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            if (pos_ >= s_.size() || !digit(s_[pos_])) error("expected digits in the exponent");
            while (pos_ < s_.size() && digit(s_[pos_])) ++pos_;
        }
        const std::string text(s_.substr(start, pos_ - start));
        v.type = JsonValue::Type::Number;
        v.number = std::strtod(text.c_str(), nullptr);
        if (integral) {
            errno = 0;
            const long long i = std::strtoll(text.c_str(), nullptr, 10);
            if (errno == 0) {
                v.is_integer = true;
                v.integer = static_cast<int64_t>(i);
            }
        }
    }

    static bool digit(char c) { return c >= '0' && c <= '9'; }

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) error("truncated \\u escape");
        unsigned code = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = s_[pos_++];
            code <<= 4;
            if (c >= '0' && c <= '9') code |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') code |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') code |= unsigned(c - 'A' + 10);
            else error("bad \\u escape");
        }
        return code;
    }

    static void append_utf8(std::string& out, unsigned code) {
        if (code < 0x80) {
            out += char(code);
        } else if (code < 0x800) {
            out += char(0xC0 | (code >> 6));
            out += char(0x80 | (code & 0x3F));
        } else if (code < 0x10000) {
            out += char(0xE0 | (code >> 12));
            out += char(0x80 | ((code >> 6) & 0x3F));
            out += char(0x80 | (code & 0x3F));
        } else {
            out += char(0xF0 | (code >> 18));
            out += char(0x80 | ((code >> 12) & 0x3F));
            out += char(0x80 | ((code >> 6) & 0x3F));
            out += char(0x80 | (code & 0x3F));
        }
    }

    // Length of the UTF-8 sequence starting at s_[pos_] (1..4), or 0 if it is not valid UTF-8.
    size_t utf8_length() const {
        const auto b = [&](size_t i) { return static_cast<unsigned char>(s_[pos_ + i]); };
        const unsigned char c = b(0);
        size_t n = 0;
        unsigned min = 0;
        unsigned code = 0;
        if (c < 0x80) return 1;
        if ((c & 0xE0) == 0xC0) { n = 2; min = 0x80; code = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 3; min = 0x800; code = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 4; min = 0x10000; code = c & 0x07; }
        else return 0;
        if (pos_ + n > s_.size()) return 0;
        for (size_t i = 1; i < n; ++i) {
            if ((b(i) & 0xC0) != 0x80) return 0;
            code = (code << 6) | (b(i) & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
        return n;
    }

    std::string string() {
        ++pos_;  // the opening quote
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) error("unterminated string");
            const char c = s_[pos_];
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) error("control character in a string");
            if (c != '\\') {
                const size_t n = utf8_length();
                if (n == 0) error("invalid UTF-8 in a string");
                out.append(s_.substr(pos_, n));
                pos_ += n;
                continue;
            }
            ++pos_;
            if (pos_ >= s_.size()) error("unterminated escape");
            const char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned code = hex4();
                    if (code >= 0xD800 && code <= 0xDBFF) {
                        if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
                            error("unpaired surrogate");
                        }
                        pos_ += 2;
                        const unsigned low = hex4();
                        if (low < 0xDC00 || low > 0xDFFF) error("unpaired surrogate");
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    } else if (code >= 0xDC00 && code <= 0xDFFF) {
                        error("unpaired surrogate");
                    }
                    append_utf8(out, code);
                    break;
                }
                default: error("unknown escape");
            }
        }
    }

    std::string_view s_;
    size_t pos_ = 0;
};

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

}  // namespace

JsonValue parse_json(std::string_view text) { return Reader(text).document(); }

std::string decode_base64(std::string_view text) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (text.size() % 4 == 1) throw std::invalid_argument("invalid base64 length");
    std::string out;
    out.reserve(text.size() / 4 * 3 + 2);
    uint32_t acc = 0;
    int bits = 0;
    for (const char c : text) {
        const int v = base64_value(c);
        if (v < 0) throw std::invalid_argument("invalid base64 character");
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xFF);
        }
    }
    return out;
}

}  // namespace limn::core
