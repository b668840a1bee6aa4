// Progress display (see progress.h).
#include "apps/lib/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace app {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02d}:{:02d}", s / 60, s % 60);
}

Progress::Progress(std::string label, int64_t total, double quiet_interval_s)
    : label_(std::move(label)),
      total_(total),
      quiet_interval_s_(quiet_interval_s),
      tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

std::string Progress::line(int64_t done, const std::string& status) const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * std::min<int64_t>(done, total_) / total_) : 0;
  std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
  std::string rate;
  if (elapsed > 0 && work_ > 0) rate = fmt::format(" | {:.1f} k{}/s", work_ / elapsed / 1000.0, work_unit_);
  std::string eta;
  if (done > 0 && done < total_) eta = " | ETA " + format_duration(elapsed / done * (total_ - done));
  return fmt::format("{} [{}] {}/{} {}{} | {}{}", label_, bar, done, total_, status, rate, format_duration(elapsed), eta);
}

void Progress::update(int64_t done, const std::string& status, double work, const char* work_unit) {
  work_ += work;
  work_unit_ = work_unit;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    fmt::print(stderr, "\r{}\x1b[K", line(done, status));
    std::fflush(stderr);
  } else if (std::chrono::duration<double>(now - last_print_).count() >= quiet_interval_s_) {
    fmt::print(stderr, "{}\n", line(done, status));
    std::fflush(stderr);
    last_print_ = now;
  }
}

void Progress::finish(const std::string& status) {
  fmt::print(stderr, "{}{}\n", tty_ ? "\r" : "", line(total_, status) + (tty_ ? "\x1b[K" : ""));
  std::fflush(stderr);
}

}  // namespace app
