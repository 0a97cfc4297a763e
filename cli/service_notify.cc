#include "service_notify.h"

#include <systemd/sd-daemon.h>

namespace clonefs::cli {

void tell_service_manager_serving(const std::string& image) {
  std::string message = "READY=1\nSTATUS=serving " + image;
  sd_notify(0, message.c_str());
}

void tell_service_manager_failed(const Status& status) {
  std::string message =
      "STATUS=mount failed: " + status.message() + "\nERRNO=" + std::to_string(status.code());
  sd_notify(0, message.c_str());
}

}  // namespace clonefs::cli
