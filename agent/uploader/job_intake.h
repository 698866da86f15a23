// Upload jobs as they arrive: parsed from the wire, checked, journaled (one transaction per
// burst), and turned into what the service does next with each. No MQTT here: the service
// publishes the events and schedules the uploads this returns.
#pragma once

#include <string>
#include <vector>

#include "protocol/types.h"
#include "upload/job.h"
#include "upload/journal.h"

namespace photorig::uploader {

// The wire's job (what the agent published) as the upload module's own type.
upload::Job to_upload_job(const protocol::UploadJob& wire);

class JobIntake {
  public:
    struct Action {
        enum class Kind {
            refuse,       // publish `event` (not waiting for the broker); nothing else
            repeat_done,  // uploaded before and its spool file is still there: publish the
                          // done `event` (waiting for the ack), then release the file
            schedule,     // upload it: `attempts` made so far
        } kind;
        upload::Job job;
        protocol::UploadEvent event;  // refuse, repeat_done
        int attempts = 0;             // schedule
    };

    // `spool_root`: the real path of spool.dir; only files under it are accepted.
    JobIntake(upload::Journal& journal, std::string spool_root);

    // The actions for a burst of payloads, in the order they are to be carried out.
    // Malformed payloads and jobs the journal could not record are logged and dropped (the
    // agent offers them again); done and permanently failed jobs need nothing.
    std::vector<Action> accept(const std::vector<std::string>& payloads);

    bool path_in_spool(const std::string& path) const;

  private:
    upload::Journal& journal_;
    std::string spool_root_;
};

}  // namespace photorig::uploader
