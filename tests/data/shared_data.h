// Locating ../shared/data for the data tests (HEP_SHARED_DATA from CTest, else relative to the source tree) and a
// scratch folder helper.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace testdata {

// The TrackML sample folder, or "" when the shared data is absent (tests then skip with a MESSAGE).
inline std::string trackml_dir() {
  namespace fs = std::filesystem;
  std::string root;
  if (const char* env = std::getenv("HEP_SHARED_DATA")) root = env;
  if (root.empty() || !fs::exists(root)) root = (fs::path(__FILE__).parent_path() / "../../../shared/data").string();
  const std::string dir = root + "/trackml";
  return fs::exists(dir + "/event000000001-hits.csv.gz") ? dir : "";
}

// A fresh empty folder under the system temp dir.
inline std::string scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path p = fs::temp_directory_path() / ("hepdata-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace testdata

#define REQUIRE_SHARED_DATA(dir)                                             \
  const std::string dir = testdata::trackml_dir();                           \
  if (dir.empty()) {                                                         \
    MESSAGE("skipped: ../shared/data/trackml is absent (set HEP_SHARED_DATA)"); \
    return;                                                                  \
  }
