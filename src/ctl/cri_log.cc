#include "ctl/cri_log.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>
#include <vector>

#include "common/fs.h"
#include "ctl/table.h"

namespace berth::ctl {
namespace {

// Go spells errno texts in lower case ("no such file or directory").
std::string ErrnoText(int err) {
  std::string s = std::strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

// Where printed records go, with the byte limit and the since filter.
class LogWriter {
 public:
  LogWriter(std::ostream& out, std::ostream& err, const LogReadOptions& opts)
      : out_(out), err_(err), opts_(opts) {
    if (opts.limit_bytes >= 0) remain_ = opts.limit_bytes;
  }

  enum class Result { kOk, kLimitReached };

  Result Write(const LogRecord& rec, bool add_prefix) {
    if (opts_.since_unix_nanos &&
        (!rec.has_timestamp || rec.timestamp.unix_nanos < *opts_.since_unix_nanos)) {
      return Result::kOk;
    }
    std::string line;
    if (opts_.timestamps && add_prefix) {
      line = (rec.has_timestamp ? FormatRfc3339NanoFixed(rec.timestamp)
                                : std::string("0001-01-01T00:00:00.000000000Z")) +
             " ";
    }
    line += rec.text;
    if (static_cast<int64_t>(line.size()) > remain_) line.resize(static_cast<size_t>(remain_));
    std::ostream& target = rec.stream == LogStream::kStdout ? out_ : err_;
    // Keep the order of stdout and stderr lines when both reach one terminal.
    if (last_ != nullptr && last_ != &target) last_->flush();
    last_ = &target;
    target.write(line.data(), static_cast<std::streamsize>(line.size()));
    remain_ -= static_cast<int64_t>(line.size());
    return remain_ <= 0 ? Result::kLimitReached : Result::kOk;
  }

  void Flush() {
    out_.flush();
    err_.flush();
  }

 private:
  std::ostream& out_;
  std::ostream& err_;
  const LogReadOptions& opts_;
  int64_t remain_ = INT64_MAX;
  std::ostream* last_ = nullptr;
};

// Reads '\n'-terminated lines from a descriptor, keeping an incomplete last
// line for the next call (so a line still being written is read whole later).
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // true with a complete line (newline included); false at end of file with
  // the incomplete rest in `line` (left buffered). Errors are I/O errors.
  StatusOr<bool> Next(std::string& line) {
    size_t scanned = pos_;
    while (true) {
      size_t nl = buf_.find('\n', scanned);
      if (nl != std::string::npos) {
        line.assign(buf_, pos_, nl + 1 - pos_);
        pos_ = nl + 1;
        if (pos_ > 65536) {
          buf_.erase(0, pos_);
          pos_ = 0;
        }
        return true;
      }
      scanned = buf_.size();
      char chunk[65536];
      ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read");
      }
      if (n == 0) {
        line.assign(buf_, pos_, std::string::npos);
        return false;
      }
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Drops the buffered incomplete line.
  void DropRest() {
    buf_.clear();
    pos_ = 0;
  }

 private:
  int fd_;
  std::string buf_;
  size_t pos_ = 0;
};

enum class WaitResult { kChanged, kRecreated, kNotRunning, kCancelled };

// Waits for the next change of the watched file (or the poll interval),
// after checking that the container still runs.
StatusOr<WaitResult> WaitForLog(int inotify_fd, const LogFollowHooks& hooks) {
  if (hooks.container_running) {
    ASSIGN_OR_RETURN(bool running, hooks.container_running());
    if (!running) return WaitResult::kNotRunning;
  } else {
    return WaitResult::kNotRunning;
  }
  while (true) {
    pollfd fds[2] = {{inotify_fd, POLLIN, 0}, {hooks.cancel_fd, POLLIN, 0}};
    int nfds = hooks.cancel_fd >= 0 ? 2 : 1;
    int r = poll(fds, static_cast<nfds_t>(nfds), hooks.poll_interval_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll on the log file watch");
    }
    if (r == 0) return WaitResult::kChanged;  // check again anyway
    if (nfds == 2 && (fds[1].revents & POLLIN) != 0) return WaitResult::kCancelled;
    alignas(inotify_event) char buf[4096];
    ssize_t n = read(inotify_fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoStatus(errno, "read the log file watch");
    }
    bool changed = false, recreated = false;
    for (ssize_t off = 0; off < n;) {
      auto* ev = reinterpret_cast<inotify_event*>(buf + off);
      if ((ev->mask & (IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_CREATE)) != 0) {
        recreated = true;
      } else if ((ev->mask & IN_MODIFY) != 0) {
        changed = true;
      }
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
    if (recreated) return WaitResult::kRecreated;
    if (changed) return WaitResult::kChanged;
  }
}

using ParseFn = StatusOr<LogRecord> (*)(std::string_view);

}  // namespace

StatusOr<LogRecord> ParseCriLogLine(std::string_view line) {
  size_t idx = line.find(' ');
  if (idx == std::string_view::npos) return InvalidArgumentError("timestamp is not found");
  StatusOr<ZonedTime> ts = ParseRfc3339Nano(line.substr(0, idx));
  if (!ts.ok()) {
    return InvalidArgumentError(
        StrCat("unexpected timestamp format \"2006-01-02T15:04:05.999999999Z07:00\": ",
               ts.status().message()));
  }
  LogRecord rec;
  rec.timestamp = *ts;
  line.remove_prefix(idx + 1);
  idx = line.find(' ');
  if (idx == std::string_view::npos) return InvalidArgumentError("stream type is not found");
  std::string_view stream = line.substr(0, idx);
  if (stream == "stdout") {
    rec.stream = LogStream::kStdout;
  } else if (stream == "stderr") {
    rec.stream = LogStream::kStderr;
  } else {
    return InvalidArgumentError(StrCat("unexpected stream type ", GoQuote(stream)));
  }
  line.remove_prefix(idx + 1);
  idx = line.find(' ');
  if (idx == std::string_view::npos) return InvalidArgumentError("log tag is not found");
  // Tags are ':'-separated; only the first (P or F) means something today.
  std::string_view tags = line.substr(0, idx);
  bool partial = tags.substr(0, tags.find(':')) == "P";
  if (partial && !line.empty() && line.back() == '\n') line.remove_suffix(1);
  rec.text = std::string(line.substr(idx + 1));
  return rec;
}

StatusOr<LogRecord> ParseDockerJsonLogLine(std::string_view line) {
  nlohmann::json doc = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError(StrCat("not a Docker JSON log line: ", GoQuote(line)));
  }
  LogRecord rec;
  rec.has_timestamp = false;
  if (auto it = doc.find("log"); it != doc.end() && it->is_string()) {
    rec.text = it->get<std::string>();
  }
  std::string stream;
  if (auto it = doc.find("stream"); it != doc.end() && it->is_string()) {
    stream = it->get<std::string>();
  }
  if (stream == "stdout") {
    rec.stream = LogStream::kStdout;
  } else if (stream == "stderr") {
    rec.stream = LogStream::kStderr;
  } else {
    return InvalidArgumentError(StrCat("unexpected stream type ", GoQuote(stream)));
  }
  if (auto it = doc.find("time"); it != doc.end() && it->is_string()) {
    ASSIGN_OR_RETURN(rec.timestamp, ParseRfc3339Nano(it->get<std::string>()));
    rec.has_timestamp = true;
  }
  return rec;
}

StatusOr<int64_t> FindTailLineStart(int fd, int64_t n) {
  if (n < 0) return 0;
  struct stat st {};
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, "stat the log file");
  constexpr int64_t kBlock = 1024;
  int64_t size = st.st_size;
  int64_t left = 0, count = 0;
  std::string block;
  // Walk back block by block until more than n newlines are seen; then move
  // forward past the surplus ones.
  for (int64_t right = size; right > 0 && count <= n; right -= kBlock) {
    left = std::max<int64_t>(right - kBlock, 0);
    block.resize(static_cast<size_t>(right - left));
    ssize_t got = pread(fd, block.data(), block.size(), left);
    if (got < 0) return ErrnoStatus(errno, "read the log file");
    block.resize(static_cast<size_t>(got));
    count += std::count(block.begin(), block.end(), '\n');
  }
  size_t pos = 0;
  for (; count > n; --count) {
    size_t nl = block.find('\n', pos);
    pos = nl + 1;
  }
  return left + static_cast<int64_t>(pos);
}

Status ReadCriLog(const std::string& path, const LogReadOptions& opts, std::ostream& out,
                  std::ostream& err, const LogFollowHooks& hooks) {
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::canonical(path, ec);
  if (ec) {
    return Status(StatusCode::kNotFound,
                  StrCat("failed to try resolving symlinks in path ", GoQuote(path), ": lstat ",
                         path, ": ", ErrnoText(ec.value())));
  }
  std::string file = resolved.string();
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return Status(StatusCode::kNotFound,
                  StrCat("failed to open log file ", GoQuote(file), ": ", ErrnoText(errno)));
  }
  StatusOr<int64_t> start = FindTailLineStart(fd.get(), opts.tail);
  if (!start.ok()) {
    return Annotate(start.status(),
                    StrCat("failed to tail ", opts.tail, " lines of log file ", GoQuote(file)));
  }
  if (lseek(fd.get(), *start, SEEK_SET) < 0) {
    return ErrnoStatus(errno, StrCat("failed to seek ", *start, " in log file ", GoQuote(file)));
  }

  bool limited = opts.tail >= 0 && !opts.follow;
  int64_t limited_left = opts.tail;
  LineReader reader(fd.get());
  UniqueFd watch;
  ParseFn parse = nullptr;
  bool stop = false;
  bool new_line = true;
  bool found = true;
  LogWriter writer(out, err, opts);
  std::string line;
  while (true) {
    if (stop || (limited && limited_left == 0)) break;
    StatusOr<bool> complete = reader.Next(line);
    if (!complete.ok()) {
      return Annotate(complete.status(), StrCat("failed to read log file ", GoQuote(file)));
    }
    if (!*complete) {
      if (opts.follow) {
        // The container stopped and everything it wrote is printed.
        if (!found) break;
        writer.Flush();
        if (!watch.valid()) {
          watch = UniqueFd(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
          if (!watch.valid()) return ErrnoStatus(errno, "failed to create the log file watch");
          if (inotify_add_watch(watch.get(), file.c_str(),
                                IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF) < 0) {
            return ErrnoStatus(errno, StrCat("failed to watch file ", GoQuote(file)));
          }
          // Something may have been written before the watch existed.
          continue;
        }
        ASSIGN_OR_RETURN(WaitResult w, WaitForLog(watch.get(), hooks));
        if (w == WaitResult::kCancelled) break;
        found = w != WaitResult::kNotRunning;
        if (w == WaitResult::kRecreated) {
          UniqueFd reopened(open(file.c_str(), O_RDONLY | O_CLOEXEC));
          if (!reopened.valid()) {
            if (errno == ENOENT) continue;
            return Status(StatusCode::kNotFound, StrCat("failed to open log file ", GoQuote(file),
                                                        ": ", ErrnoText(errno)));
          }
          fd = std::move(reopened);
          reader = LineReader(fd.get());
          watch = UniqueFd(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
          if (!watch.valid() ||
              inotify_add_watch(watch.get(), file.c_str(),
                                IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF) < 0) {
            return ErrnoStatus(errno, StrCat("failed to watch file ", GoQuote(file)));
          }
        }
        continue;
      }
      // Not following: print the incomplete last line too, then stop.
      stop = true;
      reader.DropRest();
      if (line.empty()) continue;
    }
    if (parse == nullptr) {
      if (ParseCriLogLine(line).ok()) {
        parse = ParseCriLogLine;
      } else if (ParseDockerJsonLogLine(line).ok()) {
        parse = ParseDockerJsonLogLine;
      } else {
        return InvalidArgumentError(
            StrCat("failed to get parse function: unsupported log format: ", GoQuote(line)));
      }
    }
    StatusOr<LogRecord> rec = parse(line);
    if (!rec.ok()) continue;  // a damaged line does not end the log
    if (writer.Write(*rec, new_line) == LogWriter::Result::kLimitReached) break;
    if (limited) --limited_left;
    new_line = rec->text.empty() || rec->text.back() == '\n';
  }
  writer.Flush();
  return OkStatus();
}

}  // namespace berth::ctl
