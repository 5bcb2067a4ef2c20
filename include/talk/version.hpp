#pragma once

namespace talk {
inline constexpr const char* version = "0.1.0";
}
