// The zlib dictionary of SPDY/3 header blocks, as the specification lays it
// out: each word as a 32-bit big-endian length and its bytes, followed by a
// run of common header values. Both peers must use exactly these 1423 bytes
// (zlib checks their Adler-32, 0xe3c6a7c2, in the stream header).
#include <initializer_list>
#include <string>
#include <string_view>

#include "stream/spdy_frame.h"

namespace berth::stream::spdy {

const std::string& HeaderDictionary() {
  static const std::string dictionary = [] {
    constexpr std::string_view kWords[] = {"options",
                                           "head",
                                           "post",
                                           "put",
                                           "delete",
                                           "trace",
                                           "accept",
                                           "accept-charset",
                                           "accept-encoding",
                                           "accept-language",
                                           "accept-ranges",
                                           "age",
                                           "allow",
                                           "authorization",
                                           "cache-control",
                                           "connection",
                                           "content-base",
                                           "content-encoding",
                                           "content-language",
                                           "content-length",
                                           "content-location",
                                           "content-md5",
                                           "content-range",
                                           "content-type",
                                           "date",
                                           "etag",
                                           "expect",
                                           "expires",
                                           "from",
                                           "host",
                                           "if-match",
                                           "if-modified-since",
                                           "if-none-match",
                                           "if-range",
                                           "if-unmodified-since",
                                           "last-modified",
                                           "location",
                                           "max-forwards",
                                           "pragma",
                                           "proxy-authenticate",
                                           "proxy-authorization",
                                           "range",
                                           "referer",
                                           "retry-after",
                                           "server",
                                           "te",
                                           "trailer",
                                           "transfer-encoding",
                                           "upgrade",
                                           "user-agent",
                                           "vary",
                                           "via",
                                           "warning",
                                           "www-authenticate",
                                           "method",
                                           "get",
                                           "status",
                                           "200 OK",
                                           "version",
                                           "HTTP/1.1",
                                           "url",
                                           "public",
                                           "set-cookie",
                                           "keep-alive",
                                           "origin"};
    // The first entry is one string of status codes, split over two lines.
    constexpr std::string_view kValues[] = {
        // NOLINTNEXTLINE(bugprone-suspicious-missing-comma)
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
        "505",
        "203 Non-Authoritative Information",
        "204 No Content",
        "301 Moved Permanently",
        "400 Bad Request",
        "401 Unauthorized",
        "403 Forbidden",
        "404 Not Found",
        "500 Internal Server Error",
        "501 Not Implemented",
        "503 Service Unavailable",
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
        "text/plain,text/javascript,",
        "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."};
    std::string out;
    for (std::string_view w : kWords) {
      uint32_t n = static_cast<uint32_t>(w.size());
      for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((n >> shift) & 0xff));
      out.append(w);
    }
    for (std::string_view v : kValues) out.append(v);
    return out;
  }();
  return dictionary;
}

}  // namespace berth::stream::spdy
