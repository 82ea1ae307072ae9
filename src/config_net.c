/* config_net.c - listening addresses: loopback or not, and resolving
 * --address. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include "config.h"

bool config_is_loopback(const char *address) {
  unsigned char a[16];
  if (inet_pton(AF_INET, address, a) == 1)
    return a[0] == 127;
  if (inet_pton(AF_INET6, address, a) != 1)
    return false;
  static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return memcmp(a, one, 16) == 0 || (memcmp(a, v4mapped, 12) == 0 && a[12] == 127);
}

bool config_is_loopback_sockaddr(const struct sockaddr_storage *ss) {
  char ip[INET6_ADDRSTRLEN] = "";
  if (ss->ss_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
  else if (ss->ss_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof ip);
  return config_is_loopback(ip);
}

int config_resolve_address(const char *address, int port, struct sockaddr_storage *out, size_t max,
                           char *err, size_t errlen) {
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  /* No AI_ADDRCONFIG: "localhost" must give ::1 even on a host whose only
   * IPv6 address is the loopback one. A literal is taken as it is. */
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(address, service, &hints, &res);
  if (rc) {
    snprintf(err, errlen,
             "h1mock: --address: '%s' is neither an IPv4 or IPv6 address nor a host name that "
             "resolves (%s)",
             address, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return -EINVAL;
  }
  size_t n = 0;
  for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof out[0])
      continue;
    struct sockaddr_storage ss = {0};
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    bool seen = false;
    for (size_t i = 0; i < n && !seen; i++)
      seen = memcmp(&out[i], &ss, sizeof ss) == 0;
    if (!seen)
      out[n++] = ss;
  }
  freeaddrinfo(res);
  if (n == 0) {
    snprintf(err, errlen, "h1mock: --address: '%s' has no IPv4 or IPv6 address", address);
    return -EINVAL;
  }
  return (int)n;
}

bool config_admin_exposed(const config_t *c, bool loopback_only) {
  return c->admin_token == NULL && c->admin_open && !loopback_only;
}
