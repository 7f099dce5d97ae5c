package tsm

import (
	"errors"
	"fmt"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"
)

// maxAttempts bounds the report requests of one Get. A race with another
// writer is transient, so a few attempts in fresh entries get past it,
// while a writer that keeps changing every entry still fails the request.
const maxAttempts = 3

// reportDir is the configfs-tsm report subsystem, in which each request
// creates its own entry.
const reportDir = configfsi.TsmPrefix + "/report"

// Get requests a report through client as go-configfs-tsm's report.Get
// does, and removes the report entry afterwards. It differs in two ways:
//
//   - When the entry's generation attribute shows that another writer
//     changed the entry during the request, Get discards the report and
//     requests it again in a fresh entry, up to maxAttempts requests in
//     all.
//   - When req.GetAuxBlob is set but the entry's directory lists no
//     auxblob attribute, Get requests the report without it and
//     Response.AuxBlob is empty. go-configfs-tsm reports a missing
//     attribute as an error that no longer wraps fs.ErrNotExist, so the
//     listing is the only way to tell it from a failed read. A client
//     that cannot list the entry gets the auxblob read as before, and a
//     failed read fails the request. In Linux's configfs-tsm
//     (drivers/virt/coco/tsm.c), a listed auxblob of a host that
//     attached no certificates reads as empty, not as an error.
func Get(client configfsi.Client, req *report.Request) (*report.Response, error) {
	var err error
	for range maxAttempts {
		var resp *report.Response
		resp, err = getOnce(client, req)
		if report.GetGenerationErr(err) == nil {
			return resp, err
		}
	}
	return nil, fmt.Errorf("another writer changed the report entry in each of %d attempts, so stop the other program that writes to %s and retry: %w", maxAttempts, reportDir, err)
}

// getOnce requests one report in a fresh entry.
func getOnce(client configfsi.Client, req *report.Request) (*report.Response, error) {
	entry, err := client.MkdirTemp(reportDir, "entry")
	if err != nil {
		return nil, fmt.Errorf("creating a report entry in %s: %w", reportDir, err)
	}
	// UnsafeWrap removes the entry when it fails.
	r, err := report.UnsafeWrap(client, entry)
	if err != nil {
		return nil, fmt.Errorf("opening the report entry %s: %w", entry, err)
	}
	r.InBlob = req.InBlob
	r.Privilege = req.Privilege
	r.GetAuxBlob = req.GetAuxBlob && mayHaveAttribute(client, entry, "auxblob")
	r.ServiceProvider = req.ServiceProvider
	r.ServiceGuid = req.ServiceGuid
	r.ServiceManifestVersion = req.ServiceManifestVersion

	resp, err := r.Get()
	if destroyErr := r.Destroy(); destroyErr != nil {
		err = errors.Join(err, fmt.Errorf("removing the report entry %s: %w", entry, destroyErr))
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// mayHaveAttribute reports whether the report entry's directory lists the
// attribute name, or true when the directory cannot be listed.
func mayHaveAttribute(client configfsi.Client, entry, name string) bool {
	files, err := client.ReadDir(entry)
	if err != nil {
		return true
	}
	for _, f := range files {
		if f.Name() == name {
			return true
		}
	}
	return false
}
