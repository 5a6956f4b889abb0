// The three long prompt strings of DeepSeek's official V4 encoder (data, byte-exact; a unit test
// compares them with tests/data/spec/encoding/templates/*.txt).
#include "text/chat_templates.h"

namespace dsv4::text {

// Placeholders (Python str.format syntax): {dsml_token} {thinking_start_token}
// {thinking_end_token} {tool_schemas}. Ends with exactly one newline.
const std::string_view kToolsTemplate = R"tpl(## Tools

You have access to a set of tools to help answer the user's question. You can invoke tools by writing a "<{dsml_token}tool_calls>" block like the following:

<{dsml_token}tool_calls>
<{dsml_token}invoke name="$TOOL_NAME">
<{dsml_token}parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</{dsml_token}parameter>
...
</{dsml_token}invoke>
<{dsml_token}invoke name="$TOOL_NAME2">
...
</{dsml_token}invoke>
</{dsml_token}tool_calls>

String parameters should be specified as is and set `string="true"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string="false"`.

If thinking_mode is enabled (triggered by {thinking_start_token}), you MUST output your complete reasoning inside {thinking_start_token}...{thinking_end_token} BEFORE any tool calls or final response.

Otherwise, output directly after {thinking_end_token} with tool calls or final response.

### Available Tool Schemas

{tool_schemas}

You MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.
)tpl";

// Inserted right after BOS in thinking mode with reasoning_effort = "max". Ends with two newlines.
const std::string_view kReasoningEffortMaxPrefix = R"tpl(Reasoning Effort: Absolute maximum with no shortcuts permitted.
You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic against all potential paths, edge cases, and adversarial scenarios.
Explicitly write out your entire deliberation process, documenting every intermediate step, considered alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.

)tpl";

// Placeholder {schema}; no trailing newline.
const std::string_view kResponseFormatTemplate = R"tpl(## Response Format:

You MUST strictly adhere to the following schema to reply:
{schema})tpl";

}  // namespace dsv4::text
