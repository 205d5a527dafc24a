// Times as crictl prints and parses them. crictl is written in Go, so its
// texts come from Go's time package (Time.String, RFC 3339 layouts), from
// go-units' HumanDuration, and, for `logs --since`, from Docker's
// GetTimestamp. These functions reproduce those texts.
//
// Times are nanoseconds since the Unix epoch. "Local" means the process's
// time zone (TZ, /etc/localtime), as Go's time.Local.
//
// Pure functions (they read the local zone), thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::ctl {

// go-units HumanDuration: "Less than a second", "1 second", "5 seconds",
// "About a minute", "3 minutes", "About an hour", "5 hours", "3 days",
// "2 weeks", "3 months", "2 years".
std::string HumanDuration(std::chrono::nanoseconds d);

// Go's time.Unix(0, ns).String() in local time:
// "2006-01-02 15:04:05.999999999 -0700 MST" (fraction without trailing
// zeros, left out when zero).
std::string GoTimeString(int64_t unix_nanos);

// Go's time.Unix(0, ns).Format(time.RFC3339Nano) in local time:
// "2006-01-02T15:04:05.999999999Z07:00" ("Z" for a zero offset).
std::string GoRfc3339Nano(int64_t unix_nanos);

// Go's zero time.Time formatted with RFC3339Nano.
inline constexpr std::string_view kGoZeroTimeRfc3339 = "0001-01-01T00:00:00Z";

// The prefix Go's standard logger puts before a message (log.LstdFlags):
// "2006/01/02 15:04:05 " in local time.
std::string GoStdLogPrefix(std::chrono::system_clock::time_point now);

// A point in time with the zone offset it was written with.
struct ZonedTime {
  int64_t unix_nanos = 0;
  int offset_seconds = 0;  // east of UTC
};

// Parses an RFC 3339 timestamp with an optional fraction of up to nine
// digits and a "Z" or "+hh:mm"/"-hh:mm" zone, as Go parses the CRI log
// layout "2006-01-02T15:04:05.999999999Z07:00". InvalidArgument otherwise,
// and for times that int64 nanoseconds cannot hold (before 1678, after 2262).
StatusOr<ZonedTime> ParseRfc3339Nano(std::string_view text);

// Formats like Go's "2006-01-02T15:04:05.000000000Z07:00" (nine fraction
// digits always) in the zone the time carries.
std::string FormatRfc3339NanoFixed(const ZonedTime& t);

// crictl's `logs --since` value: a Go duration ("42m": that long before
// `now`), an RFC 3339 date or date-time (with or without zone; without one
// the local zone), or a Unix timestamp "seconds[.fraction]". Returns
// nanoseconds since the epoch.
StatusOr<int64_t> ParseSinceTime(std::string_view value, std::chrono::system_clock::time_point now);

}  // namespace berth::ctl
