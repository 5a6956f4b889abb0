// DeepSeek-V4 prompt rendering (chat-encoding.md section 2). The public entry point is
// dsv4::encode_messages (include/dsv4/chat.h); the helpers below are the pipeline stages, exposed
// for tests.
#pragma once
#include <string>
#include <vector>

#include "dsv4/chat.h"

namespace dsv4::text {

// One message of the pipeline plus where it came from ("messages[3]", "context[0]") for errors.
struct ChatTurn {
  ordered_json msg;
  std::string origin;
};

// Checks field types of every message; throws dsv4::Error "<what>[i].<field>: ..." on bad input.
std::vector<ChatTurn> validate_messages(const ordered_json& messages, const char* what);

// 2.3: tool messages become tool_result blocks of a user turn; consecutive user messages merge.
std::vector<ChatTurn> merge_tool_messages(const std::vector<ChatTurn>& turns);
// 2.4: re-orders tool_result blocks of a user turn to the order of the preceding tool calls.
void sort_tool_results(std::vector<ChatTurn>& turns);
// 2.5: removes the reasoning of assistant turns (and developer turns) before the last user turn.
std::vector<ChatTurn> drop_thinking_messages(const std::vector<ChatTurn>& turns);

// Renders the DSML tool-call block of an assistant message's tool_calls (without the leading
// blank line); `origin` names the message in errors.
std::string render_tool_calls(const ordered_json& tool_calls, const std::string& origin);
// The tools section (2.7) for an OpenAI-style tools array.
std::string render_tools(const ordered_json& tools, const std::string& origin);

}  // namespace dsv4::text
