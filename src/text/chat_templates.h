// Marker strings and long template strings of the DeepSeek-V4 chat format (chat-encoding.md 1.1,
// 1.2). All markers use U+FF5C (｜) and U+2581 (▁).
#pragma once
#include <string_view>

namespace dsv4::text {

inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kUserTag = "<｜User｜>";
inline constexpr std::string_view kAssistantTag = "<｜Assistant｜>";
inline constexpr std::string_view kReminderTag = "<｜latest_reminder｜>";
inline constexpr std::string_view kThinkOpen = "<think>";
inline constexpr std::string_view kThinkClose = "</think>";
inline constexpr std::string_view kDsml = "｜DSML｜";

// DSML pieces of a tool-call block (chat-encoding.md 1.2 / 3).
inline constexpr std::string_view kToolCallsStart = "\n\n<｜DSML｜tool_calls";  // no '>'
inline constexpr std::string_view kToolCallsOpen = "<｜DSML｜tool_calls>";
inline constexpr std::string_view kToolCallsEnd = "</｜DSML｜tool_calls>";
inline constexpr std::string_view kInvokeOpen = "<｜DSML｜invoke";
inline constexpr std::string_view kInvokeClose = "</｜DSML｜invoke";
inline constexpr std::string_view kParamOpen = "<｜DSML｜parameter";
inline constexpr std::string_view kParamClose = "</｜DSML｜parameter";
inline constexpr std::string_view kParamCloseBare = "/｜DSML｜parameter";  // what the parser searches

inline constexpr std::string_view kToolResultOpen = "<tool_result>";
inline constexpr std::string_view kToolResultClose = "</tool_result>";

extern const std::string_view kToolsTemplate;
extern const std::string_view kReasoningEffortMaxPrefix;
extern const std::string_view kResponseFormatTemplate;

}  // namespace dsv4::text
