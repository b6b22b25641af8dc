#pragma once
// The CLI's subcommands register themselves here, one file each under tools/bnlab/, so adding a
// command touches no other file. A command's callback throws on bad input; main() turns any
// exception into "bnlab: error: ..." and exit status 2.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace bnlab::cli {

struct Command {
  std::string name;
  std::string description;
  std::function<void(CLI::App&)> setup;  // adds options and the callback to the subcommand
};

std::vector<Command>& commands();

struct RegisterCommand {
  explicit RegisterCommand(Command command) { commands().push_back(std::move(command)); }
};

// The exit status for bad input (also CLI11's parse errors): 2, as the brief asks.
constexpr int bad_input_status = 2;

}  // namespace bnlab::cli
