// A one-line progress display for long loops: bar, counts, free-form status, throughput and ETA. On a terminal it
// redraws in place (stderr); otherwise it prints a plain line at most every `quiet_interval_s` seconds.
#pragma once
#include <chrono>
#include <string>

namespace app {

class Progress {
 public:
  Progress(std::string label, int64_t total, double quiet_interval_s = 15.0);
  // Advances to `done` items; `status` is shown after the counts, `work` adds to the throughput numerator
  // (e.g. hits processed) with `work_unit` as its unit.
  void update(int64_t done, const std::string& status, double work = 0, const char* work_unit = "hits");
  void finish(const std::string& status);  // final line (always printed)

 private:
  std::string line(int64_t done, const std::string& status) const;
  std::string label_;
  int64_t total_;
  double quiet_interval_s_;
  bool tty_;
  double work_ = 0;
  std::string work_unit_ = "hits";
  std::chrono::steady_clock::time_point start_, last_print_;
};

std::string format_duration(double seconds);  // "1:02:03" or "02:03"

}  // namespace app
