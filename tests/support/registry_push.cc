#include "support/registry_push.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace berth::testing {

namespace {

struct Response {
  long status = 0;
  std::string location;
  std::string body;
};

size_t CollectBody(char* data, size_t size, size_t nmemb, void* userp) {
  auto* r = static_cast<Response*>(userp);
  if (r->body.size() < 64 * 1024) r->body.append(data, size * nmemb);
  return size * nmemb;
}

size_t CollectHeader(char* data, size_t size, size_t nitems, void* userp) {
  auto* r = static_cast<Response*>(userp);
  std::string_view line(data, size * nitems);
  if (line.size() > 9 && (line.starts_with("Location:") || line.starts_with("location:"))) {
    std::string_view v = line.substr(9);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) {
      v.remove_suffix(1);
    }
    r->location = std::string(v);
  }
  return size * nitems;
}

struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

StatusOr<Response> Send(const PushTarget& target, const std::string& method, const std::string& url,
                        std::string_view body, const std::string& content_type) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> h(curl_easy_init());
  if (!h) return ResourceExhaustedError("curl_easy_init failed");
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add = [&](const std::string& hdr) {
    // libcurl appends at the tail: the head, once there is one, stays; on
    // failure (nullptr) the list is unchanged and the request goes without.
    curl_slist* next = curl_slist_append(headers.get(), hdr.c_str());
    if (!headers) headers.reset(next);
  };
  add("Expect:");
  if (!content_type.empty()) add("Content-Type: " + content_type);
  if (!target.bearer_token.empty()) add("Authorization: Bearer " + target.bearer_token);
  Response resp;
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  // libcurl reads CURLOPT_POSTFIELDSIZE_LARGE bytes (set above), not up to a NUL.
  // NOLINTNEXTLINE(bugprone-suspicious-stringview-data-usage): the size is passed
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &CollectHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp);
  if (!target.username.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, target.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, target.password.c_str());
  }
  if (!target.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, target.ca_file.c_str());
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return UnavailableError(StrCat(method, " ", url, ": ", curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

Status Expect(const Response& r, long want, std::string_view what) {
  if (r.status == want) return OkStatus();
  return UnknownError(StrCat(what, ": HTTP ", r.status, " (want ", want, "): ", r.body));
}

}  // namespace

StatusOr<Digest> PushBlob(const PushTarget& target, std::string_view repository,
                          std::string_view content) {
  Digest digest = Sha256::Of(content);
  std::string what = StrCat("push blob ", digest.str(), " to ", target.base_url, "/", repository);
  ASSIGN_OR_RETURN(
      Response start,
      Send(target, "POST", StrCat(target.base_url, "/v2/", repository, "/blobs/uploads/"), "", ""));
  RETURN_IF_ERROR(Expect(start, 202, what));
  if (start.location.empty()) return UnknownError(StrCat(what, ": no Location in 202"));
  std::string location = start.location;
  if (location.starts_with("/")) location = target.base_url + location;
  location += StrCat(location.find('?') == std::string::npos ? "?" : "&", "digest=", digest.str());
  ASSIGN_OR_RETURN(Response put,
                   Send(target, "PUT", location, content, "application/octet-stream"));
  RETURN_IF_ERROR(Expect(put, 201, what));
  return digest;
}

StatusOr<Digest> PushManifest(const PushTarget& target, std::string_view repository,
                              std::string_view reference, std::string_view media_type,
                              std::string_view body) {
  std::string what = StrCat("push manifest ", target.base_url, "/", repository, ":", reference);
  ASSIGN_OR_RETURN(
      Response put,
      Send(target, "PUT", StrCat(target.base_url, "/v2/", repository, "/manifests/", reference),
           body, std::string(media_type)));
  RETURN_IF_ERROR(Expect(put, 201, what));
  return Sha256::Of(body);
}

}  // namespace berth::testing
