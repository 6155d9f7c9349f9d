//! The command line: raw flags as clap parses them (`Opts`), and the checked request the program runs on
//! (`Request`). Everything that can be checked before the model loads is checked in `Opts::resolve`.
use classify_image::{error::Error, models, sink, weights::hub::Fetch, LabelSource, ModelId};
use clap::{builder::PossibleValuesParser, Parser, Subcommand};
use std::path::PathBuf;
use tch::Device;

/// Classify an image with an ImageNet-pretrained CNN, print the top 5 classes, and show the image with the
/// top-1 label drawn on it (or write it with --output).
#[derive(Debug, Parser)]
#[command(name = "classify-image", version, subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Path to the input image
    #[arg(short, long, value_name = "PATH", required = true)]
    image: Option<PathBuf>,

    /// Name of the pre-trained network to use: the seed's vgg16, vgg19, inception, densenet, resnet, or any
    /// model of the zoo (`classify-image weights list`)
    #[arg(short, long, default_value = "vgg16", value_parser = model_names(), hide_possible_values = true)]
    model: String,

    /// Weights file (.pth, .pt or .safetensors) to use instead of the official one
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,

    /// Write the annotated image to FILE (format from its extension) instead of showing a window
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Class names, one per line [default: the built-in ImageNet labels]
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    device: String,

    #[command(flatten)]
    pub network: NetworkOpts,
}

/// How weights may be fetched; shared by classifying and `weights download`.
#[derive(Debug, clap::Args)]
pub struct NetworkOpts {
    /// Never use the network: missing weights are an error instead of a download (also CLASSIFY_IMAGE_OFFLINE=1)
    #[arg(long, global = true)]
    offline: bool,

    /// No download messages or progress bar on stderr
    #[arg(short, long, global = true)]
    quiet: bool,
}

impl NetworkOpts {
    pub fn fetch(&self) -> Fetch {
        Fetch::new(self.offline, self.quiet)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage weights files: list the models, download ahead of time, verify the cache
    #[command(subcommand)]
    Weights(WeightsCommand),
}

#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// List every model with its weights file, size, published accuracy, and where the file is
    List,
    /// Download the official weights of MODELs (or of all models) into torchvision's cache
    Download {
        /// Every model that has a download URL
        #[arg(long, conflicts_with = "models")]
        all: bool,
        #[arg(value_parser = model_names(), hide_possible_values = true, required_unless_present = "all")]
        models: Vec<String>,
    },
    /// Check the SHA-256 of the weights files present (of MODELs, or of every model)
    Verify {
        #[arg(value_parser = model_names(), hide_possible_values = true)]
        models: Vec<String>,
    },
}

fn model_names() -> PossibleValuesParser {
    PossibleValuesParser::new(models::names())
}

/// A model name that clap has checked against the registry.
pub fn model_id(name: &str) -> ModelId {
    ModelId::from_name(name).expect("clap accepted only registry names")
}

/// Where the annotated image goes.
#[derive(Debug)]
pub enum Sink {
    Window,
    File(PathBuf),
}

/// A checked request.
#[derive(Debug)]
pub struct Request {
    pub image: PathBuf,
    pub model: ModelId,
    /// The model's name as the user gave it (the seed prints it).
    pub model_name: String,
    pub weights: Option<PathBuf>,
    pub labels: LabelSource,
    pub device: Device,
    pub sink: Sink,
    pub fetch: Fetch,
}

impl Opts {
    pub fn resolve(self) -> Result<Request, Error> {
        let image = self.image.expect("clap requires --image without a subcommand");
        let device = parse_device(&self.device)?;
        let sink = match self.output {
            Some(path) => {
                sink::check_output(&path, &[&image])?;
                Sink::File(path)
            }
            None => {
                sink::check_display()?;
                Sink::Window
            }
        };
        Ok(Request {
            image,
            model: model_id(&self.model),
            model_name: self.model,
            weights: self.weights,
            labels: self.labels.map_or(LabelSource::ImageNet, LabelSource::File),
            device,
            sink,
            fetch: self.network.fetch(),
        })
    }
}

fn parse_device(arg: &str) -> Result<Device, Error> {
    let cuda_count = || tch::Cuda::device_count();
    let device = match arg {
        "auto" => return Ok(classify_image::config::default_device()),
        "cpu" => return Ok(Device::Cpu),
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Device::Cuda(n),
            None => return Err(Error::Usage(format!("unknown device '{other}'; use auto, cpu, cuda or cuda:N"))),
        },
    };
    let Device::Cuda(n) = device else { unreachable!("only CUDA devices reach here") };
    if (n as i64) < cuda_count() {
        Ok(device)
    } else {
        Err(Error::Usage(format!(
            "--device {arg}: libtorch sees {} CUDA device(s) (no GPU, no driver, or a CPU-only build); use --device cpu",
            cuda_count()
        )))
    }
}
