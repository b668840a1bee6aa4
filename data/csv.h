// Fast CSV reading and writing for the TrackML tables: whole-file reads of plain or gzip text (zlib, truncation
// detected), a header-indexed tokenizer with hand-written number parsing (std::from_chars, never via double for
// integers), and atomic writes (temp file + rename). Every parse error names the file, the line and the column.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/event.h"

namespace data {

// The whole decompressed content of a plain or gzip file. Throws ParseError on a missing, corrupt or truncated file.
std::string read_text_file(const std::string& path);

// Writes `content` to `path` atomically (temp file in the same folder, then rename); gzip-compressed when `gzip`.
void write_text_file_atomic(const std::string& path, const std::string& content, bool gzip);

// A CSV file held in memory. The first line is the header; columns are looked up by name.
class CsvTable {
 public:
  explicit CsvTable(const std::string& path);  // reads and checks the header
  const std::string& path() const { return path_; }
  // Index of the named column; throws ParseError "<file>:1: missing column '<name>'" when absent.
  size_t column(std::string_view name) const;
  bool has_column(std::string_view name) const;
  size_t count_rows() const;  // data lines (for reserve)

  // One data row during iteration. Number parsing throws ParseError naming file, line and column.
  class Row {
   public:
    size_t line() const { return line_; }
    std::string_view field(size_t col) const { return fields_[col]; }
    int32_t i32(size_t col) const;
    int64_t i64(size_t col) const;
    float f32(size_t col) const;
    [[noreturn]] void fail(size_t col, const std::string& what) const;  // ParseError at this row and column

   private:
    friend class CsvTable;
    const CsvTable* table_ = nullptr;
    size_t line_ = 0;
    std::vector<std::string_view> fields_;
  };

  // Calls f(const Row&) for every data row in file order (empty trailing lines are skipped).
  template <class F> void for_each_row(F&& f) const {
    Row row;
    row.table_ = this;
    row.fields_.resize(header_.size());
    size_t pos = body_begin_, line = 1;
    while (next_row(pos, line, row)) f(row);
  }

 private:
  bool next_row(size_t& pos, size_t& line, Row& row) const;
  std::string path_;
  std::string text_;
  std::vector<std::string> header_;
  size_t body_begin_ = 0;
};

// Appends the shortest round-trip text of a number to `out` (used by the writers).
void append_number(std::string& out, float v);
void append_number(std::string& out, int64_t v);

}  // namespace data
