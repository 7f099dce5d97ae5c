package dcap

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/pcsdoc"
)

// checkTCB verifies the TCB Info and QE Identity and evaluates the TCB
// status into c. It appends the TCB signing certificate's issuers to
// rootSubjects, which the Root CA CRL must not list.
func (v *Verifier) checkTCB(c *attest.Claims, q *Quote, chain *pckChain, set *collateral.Set, roots *rootSet, at time.Time, rootSubjects *[]*x509.Certificate) []error {
	c.TCB.Status = attest.TCBNotDetermined
	wantTCBID, wantQEID := "SGX", "QE"
	if q.TEE() == attest.TEETDX {
		wantTCBID, wantQEID = "TDX", "TD_QE"
	}

	info, err := v.selectTCBInfo(c, set, wantTCBID, chain.ext, at)
	if err != nil {
		c.Fail(checkTCBInfo, err.Error())
		return []error{err}
	}
	var errs []error
	// The evaluation data numbers of the documents whose signature and
	// chain verified, reported after both documents are checked.
	var numbers evaluationNumbers
	// Without TCB Info the platform status stays undetermined, but the QE
	// Identity is still checked, so that the QE report is matched whenever
	// the collateral allows it.
	eval := &TCBEvaluation{Status: attest.TCBNotDetermined}
	if info == nil {
		c.SkipCollateral(checkTCBInfo, fmt.Sprintf("missing TCB Info (id %s) for FMSPC %s; the TCB status is not determined", wantTCBID, hex.EncodeToString(chain.ext.FMSPC)))
		c.Skip(checkTCBEvaluation, false, "no TCB Info to evaluate the platform's TCB against")
	} else {
		if err := v.checkDocument(c, checkTCBInfo, "tcbInfo", info.doc, info.info.IssueDate, info.info.NextUpdate, set, roots, at, rootSubjects); err != nil {
			// Expired TCB Info is still Intel's and may be evaluated for
			// the claims; TCB Info whose signature or chain failed may not.
			if !errors.Is(err, attest.ErrCollateralExpired) {
				return []error{err}
			}
			errs = append(errs, err)
		}
		numbers.tcbInfo = &info.info.TCBEvaluationDataNumber
		if eval, err = EvaluatePlatform(info.info, chain.ext, q.TD); err != nil {
			c.Fail(checkTCBEvaluation, err.Error())
			return append(errs, err)
		}
	}

	id, err := v.selectIdentity(c, set, wantQEID, at)
	switch {
	case err != nil:
		c.Fail(checkQEIdentity, err.Error())
		errs = append(errs, err)
	case id == nil:
		c.SkipCollateral(checkQEIdentity, "missing QE Identity (id "+wantQEID+"); pass it with --collateral")
	default:
		if err := v.checkDocument(c, checkQEIdentity, "enclaveIdentity", id.doc, id.id.IssueDate, id.id.NextUpdate, set, roots, at, rootSubjects); err != nil {
			errs = append(errs, err)
			if !errors.Is(err, attest.ErrCollateralExpired) {
				break
			}
		}
		numbers.identity = &id.id.TCBEvaluationDataNumber
		status, level, err := MatchQEIdentity(id.id, q.QE)
		if err != nil {
			c.Fail(checkQEIdentityMatch, err.Error())
			errs = append(errs, err)
			break
		}
		c.Pass(checkQEIdentityMatch)
		eval.QEStatus = status
		eval.Status = converge(eval.Status, status)
		if level != nil {
			eval.addLevel(level.TCBDate, level.AdvisoryIDs)
		}
	}
	if info != nil {
		// Advice is given only when every check passed, because a QE
		// Identity that failed leaves no QE status, which reads as one
		// never checked.
		var err error
		if firstError(errs) == nil {
			err = AdviseRelaunch(info.info, chain.ext, q.TD, eval)
		}
		if err != nil {
			c.Fail(checkTCBEvaluation, err.Error())
			errs = append(errs, err)
		} else {
			c.Pass(checkTCBEvaluation)
		}
	}
	applyEvaluation(c, eval)
	numbers.apply(c)
	return errs
}

// fresher reports whether an item valid from issued to next is a better
// choice at at than the best so far. An item valid at at beats one that is
// not, and otherwise the later issued wins, so that a directory holding
// several versions of the collateral verifies with the current one.
func fresher(issued, next, bestIssued, bestNext, at time.Time) bool {
	valid := !at.Before(issued) && !at.After(next)
	bestValid := !at.Before(bestIssued) && !at.After(bestNext)
	if valid != bestValid {
		return valid
	}
	return issued.After(bestIssued)
}

// unusableItem wraps err, the parse error of the collateral item it, with
// the item's source and the fix. Selection skips such an item while a
// usable one of the wanted id remains, so that one stale or foreign file in
// a shared collateral directory does not stop every verification. The
// error is returned only when no usable item remains.
func unusableItem(it *collateral.Item, err error) error {
	const fix = "remove the file, or replace it with current collateral from Intel PCS"
	// A parse error's own fix speaks of evidence, not of collateral.
	var ae *attest.Error
	if errors.As(err, &ae) && errors.Is(err, attest.ErrMalformed) {
		withFix := *ae
		withFix.Fix = fix
		return fmt.Errorf("collateral %s: %w", it.Source, &withFix)
	}
	return fmt.Errorf("collateral %s: %w; %s", it.Source, err, fix)
}

// warnSkipped records a warning for each unusable collateral file that
// selection skipped, so that the file gets removed before it is the only
// one left.
func warnSkipped(c *attest.Claims, unusable []error) {
	for _, err := range unusable {
		c.Warnings = append(c.Warnings, "skipped unusable "+err.Error())
	}
}

// firstUnusable returns the error of the first unusable file, or nil, and
// records the others as skipped.
func firstUnusable(c *attest.Claims, unusable []error) error {
	if len(unusable) == 0 {
		return nil
	}
	warnSkipped(c, unusable[1:])
	return unusable[0]
}

// selectTCBInfo returns the freshest TCB Info of the collateral with the
// wanted id for the platform's FMSPC and PCE ID. TCB Info for another FMSPC
// or PCE ID only is an error naming both values.
func (v *Verifier) selectTCBInfo(c *attest.Claims, set *collateral.Set, wantID string, ext *PCKExtensions, at time.Time) (*parsedTCBInfo, error) {
	var other, best *parsedTCBInfo
	var bestItem *collateral.Item
	var unusable []error
	for _, it := range set.OfKind(collateral.KindTCBInfo) {
		p, ok := v.tcbInfos.get(it.SHA256)
		if !ok {
			info, doc, err := ParseTCBInfo(it.Raw)
			p = &parsedTCBInfo{info: info, doc: doc, err: err}
			v.tcbInfos.set(it.SHA256, p)
		}
		if p.err != nil {
			unusable = append(unusable, unusableItem(it, p.err))
			continue
		}
		if p.info.ID != wantID {
			continue
		}
		fmspc, err := hex.DecodeString(p.info.FMSPC)
		if err != nil {
			return nil, attest.Malformed("tcbInfo.fmspc", fmt.Sprintf("%q is not hexadecimal", p.info.FMSPC), err)
		}
		pceID, err := hex.DecodeString(p.info.PCEID)
		if err != nil {
			return nil, attest.Malformed("tcbInfo.pceId", fmt.Sprintf("%q is not hexadecimal", p.info.PCEID), err)
		}
		if string(fmspc) != string(ext.FMSPC) || string(pceID) != string(ext.PCEID) {
			other = p
			continue
		}
		if best == nil || fresher(p.info.IssueDate, p.info.NextUpdate, best.info.IssueDate, best.info.NextUpdate, at) {
			best, bestItem = p, it
		}
	}
	if best != nil {
		warnSkipped(c, unusable)
		c.Collateral = append(c.Collateral, attest.CollateralRef{Kind: string(collateral.KindTCBInfo), Name: wantID + " " + strings.ToLower(best.info.FMSPC),
			SHA256: bestItem.SHA256[:], IssuedAt: best.info.IssueDate.UTC(), NextUpdate: best.info.NextUpdate.UTC()})
		return best, nil
	}
	if other != nil {
		warnSkipped(c, unusable)
		field, value, expected := "tcbInfo.fmspc", strings.ToLower(other.info.FMSPC), hex.EncodeToString(ext.FMSPC)
		if strings.EqualFold(other.info.FMSPC, expected) {
			field, value, expected = "tcbInfo.pceId", strings.ToLower(other.info.PCEID), hex.EncodeToString(ext.PCEID)
		}
		return nil, attest.Errorf(attest.ErrCollateralMissing, field, "the TCB Info is for FMSPC %s, PCE ID %s, not for this platform's PCK certificate (FMSPC %s, PCE ID %s)",
			strings.ToLower(other.info.FMSPC), strings.ToLower(other.info.PCEID), hex.EncodeToString(ext.FMSPC), hex.EncodeToString(ext.PCEID)).
			WithValues(value, expected).
			WithFix("fetch the TCB Info for this FMSPC from Intel PCS (/tdx/certification/v4/tcb or /sgx/certification/v4/tcb?fmspc=...)")
	}
	return nil, firstUnusable(c, unusable)
}

// selectIdentity returns the freshest QE Identity of the collateral with
// the wanted id ("QE" or "TD_QE").
func (v *Verifier) selectIdentity(c *attest.Claims, set *collateral.Set, wantID string, at time.Time) (*parsedIdentity, error) {
	var best *parsedIdentity
	var bestItem *collateral.Item
	var unusable []error
	for _, it := range set.OfKind(collateral.KindQEIdentity) {
		p, ok := v.identities.get(it.SHA256)
		if !ok {
			id, doc, err := ParseEnclaveIdentity(it.Raw)
			p = &parsedIdentity{id: id, doc: doc, err: err}
			v.identities.set(it.SHA256, p)
		}
		if p.err != nil {
			unusable = append(unusable, unusableItem(it, p.err))
			continue
		}
		if p.id.ID != wantID {
			continue
		}
		if best == nil || fresher(p.id.IssueDate, p.id.NextUpdate, best.id.IssueDate, best.id.NextUpdate, at) {
			best, bestItem = p, it
		}
	}
	if best == nil {
		return nil, firstUnusable(c, unusable)
	}
	warnSkipped(c, unusable)
	c.Collateral = append(c.Collateral, attest.CollateralRef{Kind: string(collateral.KindQEIdentity), Name: wantID,
		SHA256: bestItem.SHA256[:], IssuedAt: best.id.IssueDate.UTC(), NextUpdate: best.id.NextUpdate.UTC()})
	return best, nil
}

// checkDocument verifies a TCB Info or QE Identity's signature and signing
// chain and its issueDate..nextUpdate window at at.
func (v *Verifier) checkDocument(c *attest.Claims, check, docName string, doc *pcsdoc.Document, issued, next time.Time, set *collateral.Set, roots *rootSet, at time.Time, rootSubjects *[]*x509.Certificate) error {
	path, err := v.verifyDocument(docName, doc, set, roots, at)
	if err != nil {
		c.Fail(check, err.Error())
		return err
	}
	for _, cert := range path[:len(path)-1] {
		if !containsCert(*rootSubjects, cert) {
			*rootSubjects = append(*rootSubjects, cert)
		}
	}
	if at.Before(issued) {
		err := attest.Errorf(attest.ErrCollateralExpired, docName, "not yet valid: issueDate %s is after the verification time %s",
			issued.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)).WithFix("check the verification time (--at)")
		c.Fail(check, err.Error())
		return err
	}
	if at.After(next) {
		err := attest.Errorf(attest.ErrCollateralExpired, docName, "expired: nextUpdate %s is before the verification time %s",
			next.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)).WithFix("fetch a current " + docName + " from Intel PCS")
		c.Fail(check, err.Error())
		return err
	}
	c.Pass(check)
	return nil
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}
