#include "clients_table.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctl_error.hpp"
#include "duration_format.hpp"
#include "terminal_text.hpp"

namespace cltoken::ctl {
namespace {

using json = Document;

constexpr std::array<std::string_view, 5> headings = {"PRINCIPAL", "CREDENTIAL", "REQUESTS", "REFUSED", "LAST SEEN"};
constexpr std::string_view gap = "  ";

std::string text_of(const json& row, const char* key) {
  const auto found = row.find(key);
  if (found == row.end() || found->is_null()) return std::string(unknown_value);
  if (found->is_string()) {
    std::string text = one_line(found->get_ref<const std::string&>());
    return text.empty() ? std::string(unknown_value) : text;
  }
  if (found->is_number()) return found->dump();
  return "?";
}

std::string count_of(const json& document, const char* key) {
  const auto found = document.find(key);
  return found != document.end() && found->is_number_unsigned() ? found->dump() : std::string("?");
}

} // namespace

std::string render_clients_table(const Document& clients) {
  const auto list = clients.is_object() ? clients.find("clients") : clients.end();
  if (!clients.is_object() || list == clients.end() || !list->is_array())
    throw CtlError(ExitCode::unreachable, "the daemon's client list has no \"clients\" array");
  std::vector<std::array<std::string, headings.size()>> rows;
  for (const auto& row : *list) {
    if (!row.is_object()) continue;
    rows.push_back({text_of(row, "principal"), text_of(row, "credential"), text_of(row, "requests"), text_of(row, "refused"),
                    text_of(row, "last_seen")});
  }
  std::string out = std::to_string(rows.size()) + (rows.size() == 1 ? " client" : " clients") + " in the last hour (at most " +
                    count_of(clients, "capacity") + " kept)\n";
  if (rows.empty()) return out;
  std::array<std::size_t, headings.size()> width{};
  for (std::size_t c = 0; c < headings.size(); ++c) width[c] = headings[c].size();
  for (const auto& row : rows)
    for (std::size_t c = 0; c < headings.size(); ++c) width[c] = std::max(width[c], display_width(row[c]));
  auto line = [&](const auto& cells) {
    std::string text;
    for (std::size_t c = 0; c < headings.size(); ++c)
      text += c + 1 < headings.size() ? pad_right(cells[c], width[c]) + std::string(gap) : std::string(cells[c]);
    return text + "\n";
  };
  out += "\n" + line(headings);
  for (const auto& row : rows) out += line(row);
  const auto evicted = clients.find("evicted");
  if (evicted != clients.end() && evicted->is_number_unsigned() && evicted->get<std::uint64_t>() > 0)
    out += "\n" + evicted->dump() + " older rows were dropped to stay within the bound\n";
  return out;
}

} // namespace cltoken::ctl
