// CSV reading/writing: zlib whole-file reads with truncation checks, a header-indexed tokenizer, from_chars parsing.
#include "data/csv.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <unistd.h>

namespace data {

namespace {

[[noreturn]] void fail_file(const std::string& path, const std::string& what) {
  throw ParseError(fmt::format("{}: {}", path, what));
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && std::string_view(s).substr(s.size() - suffix.size()) == suffix;
}

template <class T> bool parse_number(std::string_view s, T& out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;  // from_chars rejects a leading '+'
  auto [ptr, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && ptr == e && b != e;
}

}  // namespace

std::string read_text_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently
  if (!f) fail_file(path, "cannot open file");
  gzbuffer(f, 1 << 18);
  std::string out;
  std::error_code ec;
  const auto disk_size = std::filesystem::file_size(path, ec);
  if (!ec) out.reserve(disk_size * (ends_with(path, ".gz") ? 4 : 1) + 1);
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    const size_t old = out.size();
    out.resize(old + kChunk);
    const int n = gzread(f, out.data() + old, kChunk);
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose_r(f);
      fail_file(path, "corrupt gzip data (" + msg + ")");
    }
    out.resize(old + static_cast<size_t>(n));
    if (n == 0) break;
  }
  int err = Z_OK;
  gzerror(f, &err);
  const int close_rc = gzclose_r(f);
  if (err == Z_BUF_ERROR || close_rc == Z_BUF_ERROR) fail_file(path, "truncated gzip file (unexpected end of stream)");
  if (err != Z_OK || close_rc != Z_OK) fail_file(path, "gzip read error");
  return out;
}

void write_text_file_atomic(const std::string& path, const std::string& content, bool gzip) {
  const std::string tmp = fmt::format("{}.tmp{}", path, static_cast<long>(getpid()));
  bool ok = false;
  if (gzip) {
    gzFile f = gzopen(tmp.c_str(), "wb4");
    if (f) {
      size_t done = 0;
      ok = true;
      while (ok && done < content.size()) {
        const unsigned n = static_cast<unsigned>(std::min<size_t>(content.size() - done, 1u << 30));
        ok = gzwrite(f, content.data() + done, n) == static_cast<int>(n);
        done += n;
      }
      ok = (gzclose_w(f) == Z_OK) && ok;
    }
  } else {
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f) {
      ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
      ok = (std::fflush(f) == 0) && ok;
      ok = (fsync(fileno(f)) == 0) && ok;
      ok = (std::fclose(f) == 0) && ok;
    }
  }
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(fmt::format("{}: cannot write file ({})", path, std::strerror(errno)));
  }
}

CsvTable::CsvTable(const std::string& path) : path_(path), text_(read_text_file(path)) {
  const size_t eol = text_.find('\n');
  if (text_.empty()) fail_file(path_, "empty file (no header line)");
  std::string_view head(text_.data(), eol == std::string::npos ? text_.size() : eol);
  if (!head.empty() && head.back() == '\r') head.remove_suffix(1);
  size_t start = 0;
  for (;;) {
    const size_t comma = head.find(',', start);
    header_.emplace_back(head.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  body_begin_ = eol == std::string::npos ? text_.size() : eol + 1;
}

bool CsvTable::has_column(std::string_view name) const {
  return std::find(header_.begin(), header_.end(), name) != header_.end();
}

size_t CsvTable::column(std::string_view name) const {
  const auto it = std::find(header_.begin(), header_.end(), name);
  if (it == header_.end()) {
    fail_file(path_ + ":1", fmt::format("missing column '{}' (header: {})", name, fmt::join(header_, ",")));
  }
  return static_cast<size_t>(it - header_.begin());
}

size_t CsvTable::count_rows() const {
  return static_cast<size_t>(std::count(text_.begin() + static_cast<std::ptrdiff_t>(body_begin_), text_.end(), '\n')) + 1;
}

bool CsvTable::next_row(size_t& pos, size_t& line, Row& row) const {
  const char* base = text_.data();
  while (pos < text_.size()) {
    ++line;
    const char* b = base + pos;
    const char* nl = static_cast<const char*>(std::memchr(b, '\n', text_.size() - pos));
    const char* e = nl ? nl : base + text_.size();
    pos = static_cast<size_t>(e - base) + 1;
    if (e > b && e[-1] == '\r') --e;
    if (e == b) continue;  // blank line
    size_t n = 0;
    const char* f = b;
    for (;;) {
      const char* comma = static_cast<const char*>(std::memchr(f, ',', static_cast<size_t>(e - f)));
      const char* fe = comma ? comma : e;
      if (n < row.fields_.size()) row.fields_[n] = std::string_view(f, static_cast<size_t>(fe - f));
      ++n;
      if (!comma) break;
      f = comma + 1;
    }
    row.line_ = line;
    if (n != header_.size()) {
      fail_file(fmt::format("{}:{}", path_, line), fmt::format("expected {} fields, found {}", header_.size(), n));
    }
    return true;
  }
  return false;
}

void CsvTable::Row::fail(size_t col, const std::string& what) const {
  fail_file(fmt::format("{}:{}", table_->path_, line_),
            fmt::format("column {} '{}': {}", col + 1, table_->header_[col], what));
}

int32_t CsvTable::Row::i32(size_t col) const {
  int32_t v = 0;
  if (!parse_number(fields_[col], v)) fail(col, fmt::format("bad integer '{}'", fields_[col]));
  return v;
}

int64_t CsvTable::Row::i64(size_t col) const {
  int64_t v = 0;
  if (parse_number(fields_[col], v)) return v;
  uint64_t u = 0;  // ids above 2^63 (unsigned in some writers) keep their bit pattern
  if (!parse_number(fields_[col], u)) fail(col, fmt::format("bad integer '{}'", fields_[col]));
  return static_cast<int64_t>(u);
}

float CsvTable::Row::f32(size_t col) const {
  float v = 0;
  if (!parse_number(fields_[col], v)) fail(col, fmt::format("bad number '{}'", fields_[col]));
  if (!std::isfinite(v)) fail(col, fmt::format("non-finite number '{}'", fields_[col]));  // TrackML has none
  return v;
}

void append_number(std::string& out, float v) {
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ptr);
}

void append_number(std::string& out, int64_t v) {
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ptr);
}

}  // namespace data
