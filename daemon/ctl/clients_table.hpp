// The human view of the /v1/clients document: who used which credential in the last hour.
// A pure function of the document, so its output is tested byte for byte.
#pragma once

#include <string>

#include "document.hpp"

namespace cltoken::ctl {

/// For example:
///   4 clients in the last hour (at most 4096 kept)
///
///   PRINCIPAL                 CREDENTIAL     REQUESTS  REFUSED  LAST SEEN
///   unit:storefront.service   storefront-eu  120       0        2026-11-25T21:03:04Z
///   user:erp                  backoffice     3         3        2026-11-25T21:01:00Z
/// A principal is the peer's systemd unit when the daemon could read it, else its user (or
/// uid). When rows were dropped to stay within the bound, a last line says how many.
/// Daemon strings are cleaned with one_line(). Throws CtlError(unreachable) when the
/// document has no clients array.
[[nodiscard]] std::string render_clients_table(const Document& clients);

} // namespace cltoken::ctl
