#include "operation.h"

#include "reply.h"
#include "session.h"

namespace qtx::agent {

void PendingOperation::on_progress(const v1::Progress& progress) {
  if (cancelled_) return;
  buffered_ += progress.ByteSizeLong() + kPerMessage;
  if (buffered_ > max_buffered_) {
    cancelled_ = true;
    progress_.clear();
    if (auto s = session_.lock()) {
      s->respond(id_, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                     "stream data beyond the granted credit before the operation started"));
    }
    return;
  }
  progress_.push_back(progress);
}

void PendingOperation::cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  progress_.clear();
  if (auto s = session_.lock()) s->respond(id_, error_response(v1::ERROR_CODE_CANCELLED, "cancelled"));
}

void PendingOperation::hand_over(Operation& real) {
  if (credit_ != 0) real.on_credit(credit_);
  for (const auto& p : progress_) real.on_progress(p);
  progress_.clear();
}

}  // namespace qtx::agent
