package membership

import "errors"

// Errors of membership changes. The texts are etcd's, so that a change
// forwarded to the leader comes back as the same error (see ErrorFromText).
var (
	// ErrIDRemoved: the member ID was removed before and is never reused.
	ErrIDRemoved = errors.New("membership: ID removed")
	// ErrIDExists: a member with this ID already exists.
	ErrIDExists = errors.New("membership: ID exists")
	// ErrIDNotFound: no member has this ID.
	ErrIDNotFound = errors.New("membership: ID not found")
	// ErrPeerURLExists: another member already has one of the peer URLs.
	ErrPeerURLExists = errors.New("membership: peerURL exists")
	// ErrMemberNotLearner: only a learner can be promoted.
	ErrMemberNotLearner = errors.New("membership: can only promote a learner member")
	// ErrTooManyLearners: the cluster already has --max-learners learners.
	ErrTooManyLearners = errors.New("membership: too many learner members in cluster")
	// ErrNotEnoughStarted: the change would leave fewer started voting
	// members than a quorum (strict reconfiguration check).
	ErrNotEnoughStarted = errors.New("etcdserver: re-configuration failed due to not enough started members")
	// ErrUnhealthy: the member handling the change is not connected to
	// enough voting members for the cluster to keep a quorum after it.
	ErrUnhealthy = errors.New("etcdserver: unhealthy cluster")
	// ErrLearnerNotReady: the learner's log is not close enough to the
	// leader's to be promoted.
	ErrLearnerNotReady = errors.New("etcdserver: can only promote a learner member which is in sync with leader")
	// ErrBadPeerURLs: the peer URLs of a request are not valid URLs.
	ErrBadPeerURLs = errors.New("etcdserver: given member URLs are invalid")
)

// known is every error above, for ErrorFromText.
var known = []error{
	ErrIDRemoved, ErrIDExists, ErrIDNotFound, ErrPeerURLExists, ErrMemberNotLearner, ErrTooManyLearners,
	ErrNotEnoughStarted, ErrUnhealthy, ErrLearnerNotReady, ErrBadPeerURLs,
}

// Known returns the sentinel among this package's errors (and extra) that
// err wraps, or nil.
func Known(err error, extra ...error) error {
	for _, e := range append(append([]error(nil), known...), extra...) {
		if errors.Is(err, e) {
			return e
		}
	}
	return nil
}

// ErrorFromText returns the sentinel among this package's errors (and extra)
// whose text is msg, or nil.
func ErrorFromText(msg string, extra ...error) error {
	for _, e := range append(append([]error(nil), known...), extra...) {
		if e.Error() == msg {
			return e
		}
	}
	return nil
}
