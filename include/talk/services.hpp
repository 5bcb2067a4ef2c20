// The services talkd can speak, each a small class on the same hub and loop:
//
//   chat     the talk protocol of talk(7): lines relayed to the others as
//            "From <who>, <text>", commands, nicks, rooms
//   echo     each line sent back as it came (the benchmark's request/response)
//   reverse  each line sent back reversed by code point (the lecture's section 2.1)
#pragma once

#include <memory>
#include <string_view>

#include "talk/hub.hpp"

namespace talk {

// What a service may tell clients about the server (the welcome line, /stats).
struct server_identity {
    std::string_view name = "talkd";
    std::string_view version;
    std::string_view backend;
};

// The service called `name`, or nullptr for an unknown name.
std::unique_ptr<service> make_service(std::string_view name, hub& h, const server_identity& who);

}  // namespace talk
