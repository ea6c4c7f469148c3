// Package cronjob is the CronJob controller, as upstream's
// cronjob-controller (v2).
//
// It owns: creating a CronJob's Jobs at the times its schedule (standard
// cron syntax and @hourly-style macros, parsed by robfig/cron as upstream,
// in spec.timeZone when set) names, one per time, named
// "<cronjob>-<scheduled time in minutes since the epoch>"; skipping times
// older than startingDeadlineSeconds; concurrencyPolicy Allow, Forbid and
// Replace; suspend; status.active, lastScheduleTime and
// lastSuccessfulTime; deleting finished Jobs beyond
// successfulJobsHistoryLimit and failedJobsHistoryLimit; and upstream's
// events.
//
// It does not own running the Jobs (the job controller does) nor deleting
// the Jobs of a deleted CronJob (the garbage collector does).
package cronjob
