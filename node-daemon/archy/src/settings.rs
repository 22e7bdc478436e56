//! `archy settings`: an app's update and backup settings. The node takes
//! them as a whole (`package.settings`), so archy reads the current ones
//! (`package.status`), changes only what was given on the command line and
//! sends the result; with nothing given it only shows them.

use archipelago_api::methods::{
    AppParams, AppSettings, BackupSchedule, PackageSettings, PackageStatusMethod, SettingsParams,
};

use crate::apps::call;
use crate::cli::SettingsArgs;
use crate::context::Ctx;
use crate::exit::ArchyError;
use crate::output::key_values;

/// Backups kept when a new schedule does not say (`--keep`).
pub const DEFAULT_KEEP: u32 = 7;

pub async fn settings(ctx: &mut Ctx, args: SettingsArgs) -> anyhow::Result<()> {
    let id = args.id.clone();
    let status = call::<PackageStatusMethod>(ctx, AppParams { id: id.clone() }).await?;
    let mut settings = status.settings;
    let settings = if apply(&mut settings, &args)? {
        call::<PackageSettings>(ctx, SettingsParams { id, settings })
            .await?
            .settings
    } else {
        settings
    };
    if ctx.json {
        return Ok(ctx.out.json(&settings)?);
    }
    Ok(ctx.out.text(&describe(&settings))?)
}

/// Changes `settings` as `args` say; whether anything was given.
fn apply(settings: &mut AppSettings, args: &SettingsArgs) -> Result<bool, ArchyError> {
    let mut given = false;
    if let Some(hours) = args.auto_update_hours {
        settings.auto_update_hours = hours;
        given = true;
    }
    if let Some(hours) = args.backup_max_age_hours {
        settings.backup_max_age_hours = hours;
        given = true;
    }
    if args.no_backup_schedule {
        settings.backup_schedule = None;
        given = true;
    }
    let schedule_given =
        args.backup_every_hours.is_some() || args.recipient.is_some() || args.keep.is_some();
    if schedule_given {
        let schedule = match (settings.backup_schedule.take(), args) {
            (Some(mut s), _) => {
                if let Some(hours) = args.backup_every_hours {
                    s.every_hours = hours;
                }
                if let Some(recipient) = &args.recipient {
                    s.recipient.clone_from(recipient);
                }
                if let Some(keep) = args.keep {
                    s.keep = keep;
                }
                s
            }
            (
                None,
                SettingsArgs {
                    backup_every_hours: Some(every_hours),
                    recipient: Some(recipient),
                    ..
                },
            ) => BackupSchedule {
                every_hours: *every_hours,
                recipient: recipient.clone(),
                keep: args.keep.unwrap_or(DEFAULT_KEEP),
            },
            (None, _) => {
                return Err(ArchyError::Usage(
                    "the app has no backup schedule yet: give both --backup-every-hours and --recipient (age1…) to make one".to_owned(),
                ));
            }
        };
        settings.backup_schedule = Some(schedule);
        given = true;
    }
    Ok(given)
}

/// The settings for people.
fn describe(settings: &AppSettings) -> String {
    let auto_update = match settings.auto_update_hours {
        0 => "off".to_owned(),
        h => format!("looks for a new version every {h} h"),
    };
    let schedule = settings.backup_schedule.as_ref().map_or_else(
        || "off".to_owned(),
        |s| {
            format!(
                "every {} h, encrypted to {}, keeping {}",
                s.every_hours, s.recipient, s.keep
            )
        },
    );
    let max_age = match settings.backup_max_age_hours {
        0 => "never warns".to_owned(),
        h => format!("warns when the last backup is older than {h} h"),
    };
    key_values(&[
        ("auto update", auto_update),
        ("backups", schedule),
        ("backup age", max_age),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(every_hours: u32, keep: u32) -> BackupSchedule {
        BackupSchedule {
            every_hours,
            recipient: "age1old".into(),
            keep,
        }
    }

    #[test]
    fn nothing_given_changes_nothing() {
        let mut s = AppSettings::default();
        assert!(!apply(&mut s, &SettingsArgs::default()).unwrap());
        assert_eq!(s, AppSettings::default());
    }

    #[test]
    fn only_what_is_given_changes() {
        let mut s = AppSettings {
            auto_update_hours: 6,
            backup_schedule: Some(schedule(24, 3)),
            backup_max_age_hours: 48,
        };
        let args = SettingsArgs {
            keep: Some(5),
            ..SettingsArgs::default()
        };
        assert!(apply(&mut s, &args).unwrap());
        assert_eq!(s.backup_schedule, Some(schedule(24, 5)));
        assert_eq!((s.auto_update_hours, s.backup_max_age_hours), (6, 48));

        let args = SettingsArgs {
            no_backup_schedule: true,
            auto_update_hours: Some(0),
            ..SettingsArgs::default()
        };
        assert!(apply(&mut s, &args).unwrap());
        assert_eq!(s.backup_schedule, None);
        assert_eq!(s.auto_update_hours, 0);
    }

    #[test]
    fn a_new_schedule_needs_its_interval_and_recipient() {
        let mut s = AppSettings::default();
        let args = SettingsArgs {
            keep: Some(2),
            ..SettingsArgs::default()
        };
        assert!(matches!(apply(&mut s, &args), Err(ArchyError::Usage(_))));
        let args = SettingsArgs {
            backup_every_hours: Some(12),
            recipient: Some("age1new".into()),
            ..SettingsArgs::default()
        };
        assert!(apply(&mut s, &args).unwrap());
        assert_eq!(
            s.backup_schedule,
            Some(BackupSchedule {
                every_hours: 12,
                recipient: "age1new".into(),
                keep: DEFAULT_KEEP,
            })
        );
    }

    #[test]
    fn settings_read_as_sentences() {
        let text = describe(&AppSettings {
            auto_update_hours: 24,
            backup_schedule: Some(schedule(12, 7)),
            backup_max_age_hours: 0,
        });
        assert_eq!(
            text,
            "auto update  looks for a new version every 24 h\n\
             backups      every 12 h, encrypted to age1old, keeping 7\n\
             backup age   never warns\n"
        );
    }
}
